#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for SECONDS each and prints a table of executions
# and findings. Usage: tests/fuzz/run_fuzzers.sh SECONDS [TARGET ...]
#   FUZZ_BUILD (default build-fuzz): the build folder configured with -DNEMOKIT_FUZZ=ON
#   FUZZ_JOBS  (default 1): targets run at the same time
# Each target starts from its seeds (tests/fuzz/corpus/TARGET, never written to) and the corpus
# the last run grew (FUZZ_BUILD/fuzz-work/TARGET/corpus); crashes, hangs and out-of-memory
# inputs land in FUZZ_BUILD/fuzz-work/TARGET/ as crash-*, timeout-*, oom-*, with the log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:?usage: run_fuzzers.sh SECONDS [TARGET ...]}
shift
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-1}
[[ -d $build/fuzz ]] || { echo "no fuzz targets in $build/fuzz: configure with -DNEMOKIT_FUZZ=ON and build nemokit_fuzzers" >&2; exit 2; }
targets=("$@")
if (( ${#targets[@]} == 0 )); then
  for f in "$build"/fuzz/fuzz_*; do [[ -x $f ]] && targets+=("$(basename "$f")"); done
fi

# Longest input per target: the text parsers get long lines (a stack overflow needs tens of KB).
max_len() {
  case $1 in
    fuzz_oci_image|fuzz_oci_layer|fuzz_tokenizer_json) echo 65536 ;;
    *) echo 32768 ;;
  esac
}

run_one() {
  local t=$1 work=$build/fuzz-work/$1
  mkdir -p "$work/corpus"
  rm -f "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*
  # A finding stops libFuzzer; the exit status is then not 0, which the table reports.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions=$here/../sanitizers/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/fuzz/$t" "$work/corpus" "$here/corpus/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix="$work/" >"$work/log" 2>&1 || true
}

export -f run_one max_len
export build here seconds
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

printf '\n%-22s %8s %12s %8s %8s %8s\n' TARGET SECONDS EXECUTIONS EXEC/S CORPUS FINDINGS
open=0
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}' | tail -1)
  per_s=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$work/log" | awk '{print $2}' | tail -1)
  corpus=$(find "$work/corpus" -type f | wc -l)
  findings=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  open=$((open + findings))
  printf '%-22s %8s %12s %8s %8s %8s\n' "$t" "$seconds" "${execs:-?}" "${per_s:-?}" "$corpus" "$findings"
  find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -printf '    %p\n'
done
echo "open findings: $open"
