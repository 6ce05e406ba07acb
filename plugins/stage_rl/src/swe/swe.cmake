# stage_rl_swe: super3 rl swe2's multi-turn rollouts (the tool-call protocol, episodes with tool
# turns), a static library so the tests run the code the plugin runs.
file(GLOB_RECURSE STAGE_RL_SWE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(stage_rl_swe STATIC ${STAGE_RL_SWE_SOURCES})
set_target_properties(stage_rl_swe PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(stage_rl_swe PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(stage_rl_swe PUBLIC stage_rl_grpo stage_rl_env Threads::Threads)
