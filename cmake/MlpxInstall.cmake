include(CMakePackageConfigHelpers)

install(TARGETS mlpx EXPORT mlpxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/mlpx DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mlpxTargets NAMESPACE mlpx:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)

configure_package_config_file(cmake/mlpxConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/mlpxConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mlpxConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mlpxConfig.cmake ${PROJECT_BINARY_DIR}/mlpxConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlpx)
