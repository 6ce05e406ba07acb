#!/usr/bin/env bash
# Writes the tiny code tasks of super3 rl swe1/swe2 (the code_execution environment) as JSONL:
#   swe1.jsonl  a two-file sh repository with one wrong line and failing tests; answer: a patch
#   swe2.jsonl  the same repositories, the tests left for the model to read or run with a tool
# Generated (make_swe_tasks.cpp, swe_families.cpp): nothing is downloaded; every variant's tests
# are run with sh to check the bug shows and the reference fix passes.
# Usage: make_swe_tasks.sh [OUT_DIR]   (default ${XDG_CACHE_HOME:-~/.cache}/nemokit/rl-tasks)
# `nemokit data prep super3 rl swe1|swe2` splits them 98/1/1. Idempotent (a stamp keyed on this
# script and the generator's sources) and atomic (staged, then renamed into place).
set -euo pipefail

out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/rl-tasks}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "make_swe_tasks.sh: $*" >&2; exit 1; }

for tool in sha256sum sh; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup-deps.sh)"
done
cxx="${CXX:-c++}"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx' (set CXX or install build-essential)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
sources=("$here/make_swe_tasks.cpp" "$here/swe_families.cpp" "$here/swe_families.hpp")
key="$(cat "$0" "${sources[@]}" | sha256sum | cut -c1-16)"
stamp="$out/.made-swe"
files=(swe1.jsonl swe2.jsonl)

up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || up_to_date=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "make_swe_tasks.sh: swe tasks in $out are up to date"
  exit 0
fi

stage="$(mktemp -d "$out/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

"$cxx" -std=c++20 -O2 -o "$stage/make_swe_tasks" "$here/make_swe_tasks.cpp" "$here/swe_families.cpp" \
  || die "building the task generator failed (needs nlohmann-json3-dev)"
summary="$("$stage/make_swe_tasks" "$stage")" || die "the task generator failed (see above)"

for f in "${files[@]}"; do [ -s "$stage/$f" ] || die "internal: $f was not produced"; done
sync -f "$stage" 2>/dev/null || sync
for f in "${files[@]}"; do mv -f "$stage/$f" "$out/$f"; done
printf '%s\n' "$key" > "$stage/stamp" && mv -f "$stage/stamp" "$stamp"
echo "make_swe_tasks.sh: $summary -> $out"
