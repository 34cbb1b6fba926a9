# Cross-compile for 64-bit ARM (Raspberry Pi 3/4/5 and most current
# gateways) with Debian's cross compiler and multiarch target libraries.
# `scripts/cross-deps arm64 aarch64-linux-gnu` installs them (g++ cross
# compiler, qemu-user, every package of scripts/deps as PKG:arm64).
# Presets: CMakePresets.json `aarch64`; everything at once: scripts/cross.
set(SLUICE_TRIPLET aarch64-linux-gnu)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
