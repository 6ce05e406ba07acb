# The reward environments: the built-ins and patches (units), the code sandbox (root: namespaces
# and mounts; skipped otherwise), and environment plugins built against the installed SDK.
nemokit_add_test(rl_env_builtin_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/env_builtin_test.cpp LIBS stage_rl_env LABELS rl)
nemokit_add_test(rl_env_patch_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/env_patch_test.cpp LIBS stage_rl_env LABELS rl)
# The sandbox tests count the sandbox user's processes machine-wide after each answer: one at a time.
nemokit_add_test(rl_env_code_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/env_code_test.cpp LIBS stage_rl_env LABELS rl
  RESOURCE_LOCK code_sandbox)

# Out of tree: sdk/examples/hello_reward against the installed SDK (components sdk and runtime),
# then loaded by EnvironmentSet; and the fixtures a host must refuse before running their code.
foreach(fixture v2 newer_minor)
  nemokit_add_environment(rl_reward_${fixture}
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/fixtures/reward_future.cpp
    MANIFEST ${CMAKE_CURRENT_LIST_DIR}/fixtures/reward_${fixture}.json NO_INSTALL)
  # Out of lib/nemokit/environments, where the in-tree stage would find them.
  set_target_properties(rl_reward_${fixture} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fixtures)
endforeach()
target_compile_definitions(rl_reward_v2 PRIVATE FUTURE_MAJOR)
nemokit_add_test(rl_env_plugin_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/env_plugin_test.cpp LIBS stage_rl_env LABELS rl)
target_include_directories(rl_env_plugin_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/core)
target_compile_definitions(rl_env_plugin_test PRIVATE
  NEMOKIT_CMAKE_COMMAND="${CMAKE_COMMAND}"
  REWARD_V2="$<TARGET_FILE:rl_reward_v2>" REWARD_NEWER_MINOR="$<TARGET_FILE:rl_reward_newer_minor>")
add_dependencies(rl_env_plugin_test nemokit nemokit_runtime stage_rl rl_reward_v2 rl_reward_newer_minor)
if(TARGET nemokit_runtime_cuda)  # the runtime component installs it
  add_dependencies(rl_env_plugin_test nemokit_runtime_cuda)
endif()
