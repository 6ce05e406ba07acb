# super3 rl swe1/swe2: the multi-turn rollouts on the plugin's own code (the tool-call protocol,
# scripted episodes in real sandboxes, the loss mask; root for the sandbox, skipped otherwise), and
# both sub-stages through the real program with a tiny model.
nemokit_add_test(rl_swe_rollout_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/swe_rollout_test.cpp LIBS stage_rl_swe LABELS rl
  RESOURCE_LOCK code_sandbox)  # counts the sandbox user's processes machine-wide, as the CodeEnv tests do
target_include_directories(rl_swe_rollout_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/runtime)

nemokit_add_test(rl_swe_stage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/swe_stage_test.cpp LIBS nemokit_runtime LABELS rl
  RESOURCE_LOCK code_sandbox)  # its sandboxes would show up in the tests above
target_include_directories(rl_swe_stage_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/core)
target_link_libraries(rl_swe_stage_test PRIVATE nlohmann_json::nlohmann_json)
add_dependencies(rl_swe_stage_test nemokit stage_rl)
