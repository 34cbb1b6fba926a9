# Cross-compile for 64-bit ARM (Raspberry Pi 3/4/5 and most current
# gateways) with Debian's cross compiler and multiarch target libraries:
#   dpkg --add-architecture arm64
#   apt-get install crossbuild-essential-arm64 qemu-user \
#     libpaho-mqttpp-dev:arm64 libsqlite3-dev:arm64 libssl-dev:arm64 \
#     libflatbuffers-dev:arm64 libtomlplusplus-dev:arm64
set(SLUICE_TRIPLET aarch64-linux-gnu)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
