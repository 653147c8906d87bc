# Armadillo is used header-only: we link BLAS/LAPACK ourselves (OpenBLAS when
# present) instead of Armadillo's run-time wrapper, so the BLAS that does the
# work is the one we chose and threadpoolctl can see it.
include(GNUInstallDirs)

find_package(Armadillo)
if(NOT ARMADILLO_INCLUDE_DIRS)
  message(FATAL_ERROR
    "unmix: Armadillo not found. Install it (Debian: apt-get install libarmadillo-dev; "
    "conda: armadillo) or set ARMADILLO_INCLUDE_DIR and ARMADILLO_LIBRARY.")
endif()

if(NOT DEFINED BLA_VENDOR)
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS QUIET)
  find_package(LAPACK QUIET)
  if(NOT BLAS_FOUND OR NOT LAPACK_FOUND)
    unset(BLA_VENDOR)
  endif()
endif()
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)
# The core's own thread pool (parallel/pool.hpp) and the run-time lookup of
# the BLAS's thread setting (parallel/blas_threads.hpp).
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# The settings every user of the headers needs; the installed package
# config applies the same ones (cpp/cmake/unmixConfig.cmake.in).
set(UNMIX_ARMA_DEFINITIONS
  ARMA_DONT_USE_WRAPPER ARMA_DONT_USE_HDF5 ARMA_DONT_USE_ARPACK ARMA_DONT_USE_SUPERLU
  ARMA_WARN_LEVEL=0 ARMA_USE_BLAS ARMA_USE_LAPACK)

function(unmix_link_dependencies target)
  target_include_directories(${target} SYSTEM INTERFACE $<BUILD_INTERFACE:${ARMADILLO_INCLUDE_DIRS}>)
  target_compile_definitions(${target} INTERFACE ${UNMIX_ARMA_DEFINITIONS})
  target_link_libraries(${target} INTERFACE LAPACK::LAPACK BLAS::BLAS Threads::Threads ${CMAKE_DL_LIBS})
endfunction()
