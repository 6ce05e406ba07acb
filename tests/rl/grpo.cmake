# GRPO: the arithmetic and the surrogate's gradient on the plugin's own code; the stage through
# the real program (data prep, a few GRPO steps, metrics, resume, the sub-stages' answers).
nemokit_add_test(rl_grpo_math_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/grpo_math_test.cpp LIBS stage_rl_grpo LABELS rl)
target_include_directories(rl_grpo_math_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/runtime)

# The data-parallel comparison scores with a graded test environment (fixtures/letter_share.cpp),
# out of lib/nemokit/environments so no other run finds it.
nemokit_add_environment(rl_letter_share SOURCES ${CMAKE_CURRENT_LIST_DIR}/fixtures/letter_share.cpp
  MANIFEST ${CMAKE_CURRENT_LIST_DIR}/fixtures/letter_share.json NO_INSTALL)
set_target_properties(rl_letter_share PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fixtures)
nemokit_add_test(rl_stage_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/rl_stage_test.cpp LIBS nemokit_runtime LABELS rl)
target_include_directories(rl_stage_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/core ${PROJECT_SOURCE_DIR}/tests/pretrain)
target_link_libraries(rl_stage_test PRIVATE nlohmann_json::nlohmann_json)
target_compile_definitions(rl_stage_test PRIVATE LETTER_SHARE="$<TARGET_FILE:rl_letter_share>")
add_dependencies(rl_stage_test nemokit stage_rl rl_letter_share nemokit_runtime_cuda_emulated)
target_compile_definitions(rl_stage_test PRIVATE
  NEMOKIT_EMULATED_CUDA_MODULE="$<TARGET_FILE:nemokit_runtime_cuda_emulated>")

# omni3's RL sub-stages through `nemokit pipe omni3` (sft -> mpo -> text -> vision).
nemokit_add_test(rl_omni_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/omni_rl_test.cpp LIBS nemokit_runtime LABELS rl)
target_include_directories(rl_omni_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/core ${PROJECT_SOURCE_DIR}/tests/pretrain)
target_link_libraries(rl_omni_test PRIVATE nlohmann_json::nlohmann_json)
add_dependencies(rl_omni_test nemokit stage_rl stage_sft)
