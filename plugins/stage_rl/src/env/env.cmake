# stage_rl_env: the reward environments (built-ins, environment plugins, the code sandbox).
# It reuses the builder's mount helpers (overlay, /proc and /dev, pivot_root, loop devices) and
# core's ELF section reader, so environment manifests are read the way stage manifests are.
file(GLOB_RECURSE STAGE_RL_ENV_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(stage_rl_env STATIC ${STAGE_RL_ENV_SOURCES} ${PROJECT_SOURCE_DIR}/core/src/plugins/elf_sections.cpp
  ${PROJECT_SOURCE_DIR}/core/src/plugins/plugin_file_safety.cpp)
set_target_properties(stage_rl_env PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(stage_rl_env
  PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..
  PRIVATE ${PROJECT_SOURCE_DIR}/core/src)
target_link_libraries(stage_rl_env PUBLIC nemokit::sdk nlohmann_json::nlohmann_json PRIVATE nemokit_oci nemokit::runtime Threads::Threads)
