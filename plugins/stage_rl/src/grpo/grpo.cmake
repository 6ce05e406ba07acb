# stage_rl_grpo: RL data prep and GRPO (src/prep, src/grpo), a static library so the tests link
# the code the plugin runs. It renders prompts with the SFT stage's Nemotron 3 chat template and
# resolves the starting model as SFT does, by linking stage_sft_core (no second copy).
file(GLOB_RECURSE STAGE_RL_GRPO_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp ${CMAKE_CURRENT_LIST_DIR}/../prep/*.cpp)
add_library(stage_rl_grpo STATIC ${STAGE_RL_GRPO_SOURCES})
set_target_properties(stage_rl_grpo PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(stage_rl_grpo PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(stage_rl_grpo PUBLIC stage_sft_core nemokit::runtime nlohmann_json::nlohmann_json)
