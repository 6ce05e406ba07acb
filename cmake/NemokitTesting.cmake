# nemokit_add_test(NAME SOURCES a.cpp ... [LIBS lib ...] [LABELS l ...] [RESOURCE_LOCK name])
# One GoogleTest executable, registered with ctest test by test (gtest_discover_tests).
# RESOURCE_LOCK: tests sharing the name never run at the same time under `ctest -j` (e.g. those
# that count a sandbox's processes machine-wide).
find_package(GTest REQUIRED)
include(GoogleTest)

function(nemokit_add_test name)
  cmake_parse_arguments(T "" "RESOURCE_LOCK" "SOURCES;LIBS;LABELS" ${ARGN})
  # own_artifact_store.cpp: the test process's own artifact store, never the user's.
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/support/own_artifact_store.cpp)
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main ${T_LIBS})
  # tests/support: the shared test helpers (#include "support/process.hpp", ...).
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    NEMOKIT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    NEMOKIT_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(props LABELS "${T_LABELS}")
  if(T_RESOURCE_LOCK)
    list(APPEND props RESOURCE_LOCK ${T_RESOURCE_LOCK})
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# nemokit_use_debian_python(TARGET): TARGET's numpy cross-checks run with Debian's own python3,
# which sees Debian's python3-numpy (scripts/setup-deps.sh), whatever python3 comes first on PATH
# (a pyenv one sees only its own packages): NEMOKIT_DEBIAN_PYTHON, empty where there is none, and
# tests/support/numpy_python.hpp then skips the check saying so.
find_program(NEMOKIT_DEBIAN_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
function(nemokit_use_debian_python target)
  set(python "${NEMOKIT_DEBIAN_PYTHON}")
  if(NOT python)
    set(python "")
  endif()
  target_compile_definitions(${target} PRIVATE NEMOKIT_DEBIAN_PYTHON="${python}")
endfunction()
