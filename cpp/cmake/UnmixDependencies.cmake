# Armadillo is used header-only: we link BLAS/LAPACK ourselves (OpenBLAS when
# present) instead of Armadillo's run-time wrapper, so the BLAS that does the
# work is the one we chose and threadpoolctl can see it.
include(GNUInstallDirs)

find_path(UNMIX_ARMADILLO_INCLUDE_DIR armadillo
  HINTS ${ARMADILLO_INCLUDE_DIR} ENV CONDA_PREFIX PATH_SUFFIXES include)
if(NOT UNMIX_ARMADILLO_INCLUDE_DIR)
  message(FATAL_ERROR
    "unmix: Armadillo headers not found. Install them (Debian: "
    "apt-get install libarmadillo-dev; conda: armadillo) or set ARMADILLO_INCLUDE_DIR.")
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

function(unmix_link_dependencies target)
  target_include_directories(${target} SYSTEM INTERFACE
    $<BUILD_INTERFACE:${UNMIX_ARMADILLO_INCLUDE_DIR}>)
  target_compile_definitions(${target} INTERFACE
    ARMA_DONT_USE_WRAPPER ARMA_DONT_USE_HDF5 ARMA_DONT_USE_ARPACK
    ARMA_DONT_USE_SUPERLU ARMA_WARN_LEVEL=0 ARMA_USE_BLAS ARMA_USE_LAPACK)
  target_link_libraries(${target} INTERFACE LAPACK::LAPACK BLAS::BLAS)
endfunction()
