# stage_rl_mpo: MPO's loss arithmetic (src/mpo), a static library so the tests link the code the
# plugin runs.
file(GLOB_RECURSE STAGE_RL_MPO_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
add_library(stage_rl_mpo STATIC ${STAGE_RL_MPO_SOURCES})
set_target_properties(stage_rl_mpo PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(stage_rl_mpo PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(stage_rl_mpo PUBLIC nlohmann_json::nlohmann_json)
