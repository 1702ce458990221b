# Install rules: headers, the exported bijou::bijou target, and a relocatable package config so that
# consumers can `find_package(bijou CONFIG REQUIRED)`. Included when BIJOU_INSTALL is ON (the default
# for the top-level project; a project that vendors bijou with add_subdirectory/FetchContent may set
# it to install bijou along with itself).
# Every installed path is relative to the prefix: the installed tree may be moved (tests/consumer
# checks this by moving it before use).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BIJOU_INSTALL_CMAKEDIR ${CMAKE_INSTALL_DATADIR}/cmake/bijou CACHE STRING
    "Where bijou's package config goes, relative to the install prefix")
mark_as_advanced(BIJOU_INSTALL_CMAKEDIR)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/bijou DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS bijou EXPORT bijouTargets)
install(EXPORT bijouTargets NAMESPACE bijou:: DESTINATION ${BIJOU_INSTALL_CMAKEDIR})
# bijou::cuda (for translation units compiled by nvcc), exported when this build has it; the package
# config loads it only where the consumer's CMake finds a CUDA toolkit.
if(BIJOU_CUDA)
  install(TARGETS bijou_cuda EXPORT bijouCudaTargets)
  install(EXPORT bijouCudaTargets NAMESPACE bijou:: DESTINATION ${BIJOU_INSTALL_CMAKEDIR})
endif()

# bijou::distributed (programs that use <bijou/distributed/mpi.hpp>), exported when this build has MPI;
# the package config loads it only where the consumer's CMake finds MPI.
if(BIJOU_MPI)
  install(TARGETS bijou_distributed EXPORT bijouMpiTargets)
  install(EXPORT bijouMpiTargets NAMESPACE bijou:: DESTINATION ${BIJOU_INSTALL_CMAKEDIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bijouConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bijouConfig.cmake
  INSTALL_DESTINATION ${BIJOU_INSTALL_CMAKEDIR})
# Header-only: any architecture; 0.1.x satisfies a request for 0.1 but not for 0.2.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bijouConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/bijouConfig.cmake ${PROJECT_BINARY_DIR}/bijouConfigVersion.cmake
  DESTINATION ${BIJOU_INSTALL_CMAKEDIR})
