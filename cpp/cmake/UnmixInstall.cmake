include(CMakePackageConfigHelpers)

install(DIRECTORY cpp/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS unmix EXPORT unmixTargets)
if(UNMIX_HAS_MPI)
  install(TARGETS unmix_mpi EXPORT unmixTargets)
endif()
install(EXPORT unmixTargets NAMESPACE unmix::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unmix)
configure_package_config_file(cpp/cmake/unmixConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/unmixConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unmix)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/unmixConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/unmixConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/unmixConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/unmix)
