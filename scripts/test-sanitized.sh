#!/usr/bin/env bash
# The whole test suite again, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DNEMOKIT_SANITIZE=ON) in a build folder of its own, build-asan/. Run after scripts/test.sh,
# which installs what the suite needs. Not part of CI: the sanitized build costs about as much CPU
# as the whole CI run. Any sanitizer report fails the test that made it. Extra arguments go to
# ctest (e.g. -L build, -R Tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh >/dev/null
# -O1: sanitized code at -O2 compiles slower and finds nothing more; CUDA is off because device
# code is not instrumented and the GPU checks run in bench/gpu.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEMOKIT_SANITIZE=ON -DNEMOKIT_ENABLE_CUDA=OFF \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" >/dev/null
cmake --build build-asan -j"$(nproc)"
supp="$(pwd)/tests/sanitizers"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
rc=0
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 1800 --output-junit ctest-junit.xml "$@" || rc=$?
python3 scripts/skipped_tests.py build-asan/ctest-junit.xml || true
exit "$rc"
