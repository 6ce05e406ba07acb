#!/usr/bin/env bash
# Writes the tiny SFT config's chat data as JSONL, derived from Debian packages only:
#   train.jsonl  {"messages": [...]} conversations: word definitions and usage (wordnet-base,
#                filtered by wamerican), riddles (fortunes-min), country capitals (miscfiles),
#                the RL tasks' answer formats (arithmetic, unscrambling, definition and capital
#                multiple choice) on items the RL data prep keeps in its train split, and
#                arithmetic drills outside the RL tasks' range (sums to 99 + 99)
#   val.jsonl    the same kinds for the held-out words (~3%, chosen by a hash of the word)
#   eval.jsonl   generation checks: held-out definitions' heads, capitals seen in training, and
#                answer-format items kept out of train.jsonl
# Usage: make_chats.sh [OUT_DIR]   (default ${XDG_CACHE_HOME:-~/.cache}/nemokit/sft-chats)
# Idempotent: a stamp keyed on this script, the helper's sources and the source data skips work
# already done. Atomic: files are built in a staging folder inside OUT_DIR and renamed into place.
set -euo pipefail

out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/sft-chats}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rl="$here/../../stage_rl/corpus"  # the RL tasks' generator and split (rl_tasks.hpp)
wordnet=/usr/share/wordnet
dict=/usr/share/dict/american-english
riddles=/usr/share/games/fortunes/riddles
countries=/usr/share/misc/countries.gz

die() { echo "make_chats.sh: $*" >&2; exit 1; }

for tool in sha256sum gzip; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup-deps.sh)"
done
for f in "$wordnet"/{index,data}.{noun,verb,adj,adv}; do
  [ -f "$f" ] || die "$f missing (install wordnet-base)"
done
[ -f "$dict" ] || die "$dict missing (install wamerican)"
[ -f "$riddles" ] || die "$riddles missing (install fortunes-min)"
[ -f "$countries" ] || die "$countries missing (install miscfiles)"
for f in "$rl"/rl_tasks.{hpp,cpp}; do [ -f "$f" ] || die "$f missing (the RL stage's corpus)"; done
cxx="${CXX:-c++}"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx' (set CXX or install build-essential)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
sources=("$here/chat_sources.hpp" "$here/chat_sources.cpp" "$rl/rl_tasks.hpp" "$rl/rl_tasks.cpp"
         "$here/make_chats.cpp")
tool_key="$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
# The data's bytes are part of the key: a package upgrade must rebuild the chats.
key="$(cat "$0" "${sources[@]}" "$wordnet"/{index,data}.{noun,verb,adj,adv} "$dict" "$riddles" \
       "$countries" | sha256sum | cut -c1-16)"
stamp="$out/.made"
files=(train.jsonl val.jsonl eval.jsonl)

up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || up_to_date=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "make_chats.sh: chats in $out are up to date"
  exit 0
fi

stage="$(mktemp -d "$out/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

# --- the generator, built once per source version ----------------------------------------------
tool="$out/.tools/make_chats-$tool_key"
if [ ! -x "$tool" ]; then
  mkdir -p "$out/.tools"
  "$cxx" -std=c++20 -O2 -I"$here" -I"$rl" -o "$stage/make_chats" "$here/make_chats.cpp" \
    "$here/chat_sources.cpp" "$rl/rl_tasks.cpp" \
    || die "building the chat generator failed (needs nlohmann-json3-dev)"
  mv -f "$stage/make_chats" "$tool"
fi

gzip -dc "$countries" > "$stage/countries.txt" || die "cannot decompress $countries"
summary="$("$tool" "$wordnet" "$dict" "$riddles" "$stage/countries.txt" "$stage")" \
  || die "the chat generator failed (see above)"

# --- publish ------------------------------------------------------------------------------------
for f in "${files[@]}"; do [ -s "$stage/$f" ] || die "internal: $f was not produced"; done
sync -f "$stage" 2>/dev/null || sync
for f in "${files[@]}"; do mv -f "$stage/$f" "$out/$f"; done
printf '%s\n' "$key" > "$stage/stamp" && mv -f "$stage/stamp" "$stamp"
echo "make_chats.sh: $summary -> $out"
