# RLHF: the reward model's loss, gradient, pairs, checkpoint and training on the plugin's own
# code; the stage through the real program (reward model, then GRPO against it).
nemokit_add_test(rl_rlhf_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/rlhf_test.cpp LIBS stage_rl_rlhf LABELS rl)
target_include_directories(rl_rlhf_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/runtime)

nemokit_add_test(rl_rlhf_stage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/rlhf_stage_test.cpp LIBS nemokit_runtime LABELS rl)
target_include_directories(rl_rlhf_stage_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/core)
target_link_libraries(rl_rlhf_stage_test PRIVATE nlohmann_json::nlohmann_json)
add_dependencies(rl_rlhf_stage_test nemokit stage_rl)
