#!/usr/bin/env bash
# Writes the tiny omni3 SFT's multimodal chats as JSONL with their media, from Debian packages:
#   train.jsonl  {"messages": [...], "images"|"audios"|"videos": [...]} chats, kinds mixed:
#                Fashion-MNIST clothes (dataset-fashion-mnist), scikit-learn's 8x8 digits
#                (python3-sklearn's digits.csv.gz, read from the .deb without installing it),
#                common words spoken by espeak-ng (wamerican, ranked by wordnet-base) and videos of
#                a digit drifting across the frame
#   val.jsonl    the same kinds on held-out items, for validation loss
#   eval.jsonl   generation checks: {"kind", "messages" (user turn), media, "expected"}; speech
#                twice: "speech" (held-out words) and "speech_voice" (train words, an unheard voice)
#   rl-vision.jsonl  omni3 vision RL tasks: {"prompt", "images", "expected_answer", "environment",
#                "task"}: Fashion-MNIST images no chat shows, train digits, sums of two digits
#   images/ audio/ video/<id>/frame_NN.png   the media; paths in the JSONL are relative to it
# Usage: make_omni_chats.sh [OUT_DIR]   (default ${XDG_CACHE_HOME:-~/.cache}/nemokit/omni-chats)
# Idempotent: a stamp keyed on this script, the generator's sources, the source data and
# espeak-ng's version skips work already done. Atomic: everything is built in a staging folder
# inside OUT_DIR and renamed into place.
set -euo pipefail

out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/omni-chats}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fashion=/usr/share/datasets/fashion-mnist
dict=/usr/share/dict/american-english
wordnet=/usr/share/wordnet
digits_in_deb=usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
# The digits come out of python3-sklearn's .deb once and are kept here for every OUT_DIR.
deb_cache="${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/debs"

die() { echo "make_omni_chats.sh: $*" >&2; exit 1; }

for tool in sha256sum espeak-ng dpkg-deb; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup-deps.sh)"
done
for f in "$fashion"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; do
  [ -f "$f" ] || die "$f missing (install dataset-fashion-mnist)"
done
[ -f "$dict" ] || die "$dict missing (install wamerican)"
for f in "$wordnet"/index.{noun,verb,adj,adv}; do [ -f "$f" ] || die "$f missing (install wordnet-base)"; done
cxx="${CXX:-c++}"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx' (set CXX or install build-essential)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d "$out/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

# --- scikit-learn's digits: installed, cached, or taken from the package without installing it ---
digits="/$digits_in_deb"
if [ ! -f "$digits" ]; then
  digits="$deb_cache/python3-sklearn/digits.csv.gz"
  if [ ! -f "$digits" ]; then
    deb="$(ls /var/cache/apt/archives/python3-sklearn_*_all.deb 2>/dev/null | tail -n1 || true)"
    if [ -z "$deb" ]; then
      if ! (cd "$stage" && apt-get download -q python3-sklearn >/dev/null 2>&1); then
        # A fresh machine may have no package lists yet: refresh them once (as root) and retry.
        if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
        (cd "$stage" && apt-get download -q python3-sklearn >/dev/null 2>&1) \
          || die "apt-get download python3-sklearn failed (run 'apt-get update' first?)"
      fi
      deb="$(ls "$stage"/python3-sklearn_*.deb | tail -n1)"
    fi
    dpkg-deb -x "$deb" "$stage/deb" || die "cannot unpack $deb"
    [ -f "$stage/deb/$digits_in_deb" ] || die "$deb has no $digits_in_deb"
    mkdir -p "$(dirname "$digits")"
    cp "$stage/deb/$digits_in_deb" "$digits.tmp.$$" && mv -f "$digits.tmp.$$" "$digits"
    rm -rf "$stage/deb" "$stage"/python3-sklearn_*.deb
  fi
fi

sources=("$here/omni_sources.hpp" "$here/omni_sources.cpp" "$here/omni_media.hpp" "$here/omni_media.cpp"
         "$here/make_omni_chats.cpp")
tool_key="$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
# The data's bytes and the synthesizer's version are part of the key: an upgrade rebuilds.
key="$( (cat "$0" "${sources[@]}" "$fashion"/*-ubyte.gz "$digits" "$dict" "$wordnet"/index.{noun,verb,adj,adv};
         espeak-ng --version) | sha256sum | cut -c1-16)"
stamp="$out/.made"
files=(train.jsonl val.jsonl eval.jsonl rl-vision.jsonl)
dirs=(images audio video)

up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || up_to_date=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
for d in "${dirs[@]}"; do [ -d "$out/$d" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "make_omni_chats.sh: omni chats in $out are up to date"
  exit 0
fi

# --- the generator, built once per source version ----------------------------------------------
tool="$out/.tools/make_omni_chats-$tool_key"
if [ ! -x "$tool" ]; then
  mkdir -p "$out/.tools"
  "$cxx" -std=c++20 -O2 -o "$stage/make_omni_chats" "$here/make_omni_chats.cpp" "$here/omni_sources.cpp" \
    "$here/omni_media.cpp" -pthread -lpng -lz \
    || die "building the omni chat generator failed (needs libpng-dev and zlib1g-dev)"
  mv -f "$stage/make_omni_chats" "$tool"
fi

mkdir "$stage/data"
summary="$("$tool" "$fashion" "$digits" "$dict" "$wordnet" "$stage/data")" \
  || die "the omni chat generator failed (see above)"

# --- publish: media folders first (old ones moved aside, removed with the staging folder), then
# the JSONL that refers to them, then the stamp ---------------------------------------------------
for f in "${files[@]}"; do [ -s "$stage/data/$f" ] || die "internal: $f was not produced"; done
sync -f "$stage" 2>/dev/null || sync
mkdir "$stage/old"
for d in "${dirs[@]}"; do
  if [ -e "$out/$d" ]; then mv "$out/$d" "$stage/old/$d"; fi
  mv "$stage/data/$d" "$out/$d"
done
for f in "${files[@]}"; do mv -f "$stage/data/$f" "$out/$f"; done
printf '%s\n' "$key" > "$stage/stamp" && mv -f "$stage/stamp" "$stamp"
echo "make_omni_chats.sh: $summary -> $out"
