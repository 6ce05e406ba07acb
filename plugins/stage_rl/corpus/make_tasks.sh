#!/usr/bin/env bash
# Writes the tiny RL configs' verifiable tasks as JSONL, derived from Debian packages only:
#   arithmetic.jsonl   sums, differences and products of small numbers (generated)
#   unscramble.jsonl   short words (wordnet-base lemmas in wamerican) with their letters shuffled
#   definitions.jsonl  four-way multiple choice: which word a WordNet definition belongs to
#   capitals.jsonl     four-way multiple choice: country capitals (miscfiles), asked two ways
# Usage: make_tasks.sh [OUT_DIR]   (default ${XDG_CACHE_HOME:-~/.cache}/nemokit/rl-tasks)
# `nemokit data prep nano3 rl` splits them into train/val/test. Idempotent (a stamp keyed on this
# script, the generator's sources and the data) and atomic (staged, then renamed into place).
set -euo pipefail

out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/rl-tasks}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readers="$here/../../stage_sft/corpus"  # the WordNet/dictionary/countries readers the SFT chats use
wordnet=/usr/share/wordnet
dict=/usr/share/dict/american-english
countries=/usr/share/misc/countries.gz

die() { echo "make_tasks.sh: $*" >&2; exit 1; }

for tool in sha256sum gzip; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup-deps.sh)"
done
for f in "$wordnet"/{index,data}.{noun,verb,adj,adv}; do
  [ -f "$f" ] || die "$f missing (install wordnet-base)"
done
[ -f "$dict" ] || die "$dict missing (install wamerican)"
[ -f "$countries" ] || die "$countries missing (install miscfiles)"
cxx="${CXX:-c++}"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx' (set CXX or install build-essential)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
sources=("$readers/chat_sources.hpp" "$readers/chat_sources.cpp" "$here/rl_tasks.hpp" "$here/rl_tasks.cpp"
         "$here/make_tasks.cpp")
tool_key="$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
key="$(cat "$0" "${sources[@]}" "$wordnet"/{index,data}.{noun,verb,adj,adv} "$dict" "$countries" \
       | sha256sum | cut -c1-16)"
stamp="$out/.made"
files=(arithmetic.jsonl unscramble.jsonl definitions.jsonl capitals.jsonl)

up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || up_to_date=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "make_tasks.sh: tasks in $out are up to date"
  exit 0
fi

stage="$(mktemp -d "$out/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

tool="$out/.tools/make_tasks-$tool_key"
if [ ! -x "$tool" ]; then
  mkdir -p "$out/.tools"
  "$cxx" -std=c++20 -O2 -I"$readers" -o "$stage/make_tasks" "$here/make_tasks.cpp" "$here/rl_tasks.cpp" \
    "$readers/chat_sources.cpp" \
    || die "building the task generator failed (needs nlohmann-json3-dev)"
  mv -f "$stage/make_tasks" "$tool"
fi

gzip -dc "$countries" > "$stage/countries.txt" || die "cannot decompress $countries"
summary="$("$tool" "$wordnet" "$dict" "$stage/countries.txt" "$stage")" || die "the task generator failed (see above)"

for f in "${files[@]}"; do [ -s "$stage/$f" ] || die "internal: $f was not produced"; done
sync -f "$stage" 2>/dev/null || sync
for f in "${files[@]}"; do mv -f "$stage/$f" "$out/$f"; done
printf '%s\n' "$key" > "$stage/stamp" && mv -f "$stage/stamp" "$stamp"
echo "make_tasks.sh: $summary -> $out"
