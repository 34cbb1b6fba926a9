# Cross-compile for 32-bit ARMv7 hard-float (BeagleBone, older Pis) with
# Debian's cross compiler and multiarch target libraries (architecture
# armhf; see aarch64-linux-gnu.cmake for the packages, with :armhf).
set(SLUICE_TRIPLET arm-linux-gnueabihf)
set(CMAKE_SYSTEM_PROCESSOR arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
