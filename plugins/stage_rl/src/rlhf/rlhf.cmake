# stage_rl_rlhf: the reward model (backbone + scalar head, Bradley-Terry training, preference
# pairs from the tasks) and super3 rl rlhf (reward model, then GRPO against it); a static
# library so the tests link the code the plugin runs.
file(GLOB_RECURSE STAGE_RL_RLHF_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(stage_rl_rlhf STATIC ${STAGE_RL_RLHF_SOURCES})
set_target_properties(stage_rl_rlhf PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(stage_rl_rlhf PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(stage_rl_rlhf PUBLIC stage_rl_grpo stage_rl_env)
