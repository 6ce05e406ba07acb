# MPO: the loss terms, their gradient and BCO's running reward mean on the plugin's own code.
nemokit_add_test(rl_mpo_math_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/mpo_math_test.cpp LIBS stage_rl_mpo LABELS rl)
