# loom_add_plugin(NAME <name> KIND <kind> SOURCES <files...> [LIBS <targets...>])
#
# Builds one Loom plugin: a MODULE library named libloom_<kind>_<name>.so that exports only
# its entry point, links Loom::sdk, and installs into the folder the engine searches
# (lib/loom/plugins under the install prefix). Used in-tree and by out-of-tree plugins alike.
function(loom_add_plugin)
  cmake_parse_arguments(P "" "NAME;KIND" "SOURCES;LIBS" ${ARGN})
  set(kinds scheduler kv_allocator evictor attention parallel kv_connector drafter)
  if(NOT P_NAME OR NOT P_KIND OR NOT P_SOURCES)
    message(FATAL_ERROR "loom_add_plugin: NAME, KIND and SOURCES are required")
  endif()
  if(NOT P_KIND IN_LIST kinds)
    message(FATAL_ERROR "loom_add_plugin(${P_NAME}): KIND '${P_KIND}' is not one of: ${kinds}")
  endif()
  if(NOT P_NAME MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "loom_add_plugin: NAME '${P_NAME}' must be lower-case letters, digits and '_'")
  endif()
  set(target loom_${P_KIND}_${P_NAME})
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE Loom::sdk ${P_LIBS})
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    # Installed in lib/loom/plugins: Loom's own libraries (libloom_kernels) are two levels up.
    INSTALL_RPATH "$ORIGIN/../..")
  # Every symbol a plugin needs must resolve at link time, not as a surprise at load time.
  target_link_options(${target} PRIVATE "LINKER:-z,defs"
    "LINKER:--version-script=${CMAKE_CURRENT_FUNCTION_LIST_DIR}/loom_plugin.map")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/loom_plugin.map")
  if(DEFINED LOOM_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${LOOM_PLUGIN_OUTPUT_DIR}")
  endif()
  # Without a build type CMake adds no optimisation at all: a plugin built that way would skew
  # every timing it takes part in.
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
    target_compile_options(${target} PRIVATE -O2)
  endif()
  if(COMMAND loom_set_warnings)
    loom_set_warnings(${target})
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${LOOM_PLUGIN_INSTALL_DIR}")
endfunction()
