# One precompiled header (cmake/parley_pch.h) for the whole build. Every target reuses the
# same .gch, so it is compiled once, not once per target; GCC checks that it fits each
# translation unit (-Winvalid-pch, an error with -Werror), so a target whose flags differ
# fails loudly instead of silently parsing everything again. PARLEY_PCH=OFF turns it off.
option(PARLEY_PCH "Precompile the Boost and standard headers once for every target" ON)

if(PARLEY_PCH)
  add_library(parley_pch STATIC ${CMAKE_CURRENT_LIST_DIR}/parley_pch.cpp)
  target_link_libraries(parley_pch PRIVATE Boost::json)
  target_precompile_headers(parley_pch PRIVATE ${CMAKE_CURRENT_LIST_DIR}/parley_pch.h)
endif()

# Applies the shared precompiled header to every C++ target under `dir`.
function(parley_apply_pch dir)
  if(NOT PARLEY_PCH)
    return()
  endif()
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    if(t STREQUAL parley_pch OR type STREQUAL INTERFACE_LIBRARY OR type STREQUAL UTILITY)
      continue()
    endif()
    target_precompile_headers(${t} REUSE_FROM parley_pch)
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    parley_apply_pch(${sub})
  endforeach()
endfunction()
