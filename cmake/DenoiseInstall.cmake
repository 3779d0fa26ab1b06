# `cmake --install`: the programs, the shared libraries (libdenoise_core, the model plugin
# libdenoise_model, the C API libdenoise with its header, pkg-config file and CMake package) and
# the shipped model, which the installed programs and library find without flags
# (<prefix>/share/denoise/models/default.dnz; see default_model_candidates() in denoiser.h).
# The installed tree is relocatable: binaries find their libraries through $ORIGIN run paths.
foreach(program infer evaluate train make_tiny_dataset make_mixtures)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(TARGETS denoise_core LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET denoise_model)
  install(TARGETS denoise_model LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(FILES ${PROJECT_SOURCE_DIR}/models/pretrained/default.dnz
              ${PROJECT_SOURCE_DIR}/models/pretrained/default.card.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/denoise/models)
