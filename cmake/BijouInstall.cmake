# Install rules: headers, the exported bijou::bijou target, and a relocatable package config so that
# consumers can `find_package(bijou CONFIG REQUIRED)`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/bijou DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS bijou EXPORT bijouTargets)
install(EXPORT bijouTargets NAMESPACE bijou:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/bijou)

configure_package_config_file(cmake/bijouConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/bijouConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/bijou)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bijouConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bijouConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/bijouConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/bijou)
