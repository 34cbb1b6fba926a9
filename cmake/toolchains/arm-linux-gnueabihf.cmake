# Cross-compile for 32-bit ARMv7 hard-float (BeagleBone, older Pis) with
# Debian's cross compiler and multiarch target libraries (architecture
# armhf): `scripts/cross-deps armhf arm-linux-gnueabihf`, preset `armhf`.
set(SLUICE_TRIPLET arm-linux-gnueabihf)
set(CMAKE_SYSTEM_PROCESSOR arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
# GCC notes on armhf that the ABI of passing some structs changed in GCC 7.1:
# irrelevant here (everything is built with one GCC 12), and noise in logs.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
