# nemokit_add_test(NAME SOURCES a.cpp ... [LIBS lib ...] [LABELS l ...])
# One GoogleTest executable, registered with ctest test by test (gtest_discover_tests).
find_package(GTest REQUIRED)
include(GoogleTest)

function(nemokit_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main ${T_LIBS})
  target_compile_definitions(${name} PRIVATE
    NEMOKIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    NEMOKIT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()
