# Shared part of the Debian multiarch toolchain files. REQUIRES:
# SLUICE_TRIPLET and CMAKE_SYSTEM_PROCESSOR set by the including file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${SLUICE_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${SLUICE_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${SLUICE_TRIPLET})

# Target libraries and headers live in the normal prefix under the triplet;
# host programs (flatc) are found on the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_PREFIX_PATH /usr/lib/${SLUICE_TRIPLET}/cmake)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/cmake)

# Paho C++'s package config calls find_package(OpenSSL), which goes through
# pkg-config: point it at the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${SLUICE_TRIPLET}/pkgconfig:/usr/share/pkgconfig)

# Tests run under qemu-user with the multiarch glibc (-L /).
find_program(SLUICE_QEMU NAMES qemu-${CMAKE_SYSTEM_PROCESSOR} qemu-${CMAKE_SYSTEM_PROCESSOR}-static)
if(SLUICE_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SLUICE_QEMU} -L /)
endif()
