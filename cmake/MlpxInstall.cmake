# Installs the library, its public headers (the FILE_SET HEADERS of src/CMakeLists.txt:
# include/mlpx/*.h), the mlpx::mlpx export and the package config (cmake/mlpxConfig.cmake.in),
# so that another project can use find_package(mlpx). The CLI installs itself (src/cli/).
include(CMakePackageConfigHelpers)

# One form of the library: libmlpx.so with MLPX_SHARED (src/CMakeLists.txt), else libmlpx.a;
# either is mlpx::mlpx to the consumer.
if(MLPX_SHARED)
  install(TARGETS mlpx_shared EXPORT mlpxTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
else()
  install(TARGETS mlpx EXPORT mlpxTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
if(MLPX_CUDA_SIM AND NOT MLPX_SHARED)
  # A simulator build's library runs its CUDA backend on mlpx_sim, which goes with it.
  install(TARGETS mlpx_sim EXPORT mlpxTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(EXPORT mlpxTargets NAMESPACE mlpx:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)

configure_package_config_file(cmake/mlpxConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mlpxConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mlpxConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mlpxConfig.cmake ${PROJECT_BINARY_DIR}/mlpxConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)
