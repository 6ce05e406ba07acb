#!/usr/bin/env bash
# Writes the pretraining corpus as plain UTF-8 text files, taken from Debian packages only:
#   kjv-bible.txt            King James Bible (bible-kjv), one chapter per paragraph, one verse a line
#   austen-<novel>.txt       Jane Austen's six novels (r-cran-janeaustenr's R data, read without R)
#   fortunes.txt             fortunes + fortunes-min, one item per paragraph, offensive sets skipped
# Usage: extract.sh [OUT_DIR]   (default ${XDG_CACHE_HOME:-~/.cache}/nemokit/corpus)
# Idempotent: a stamp keyed on this script and the extractor's sources skips work already done.
# Atomic: everything is built in a staging folder beside OUT_DIR's files and renamed into place.
set -euo pipefail

out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/nemokit/corpus}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ascii-art holds pictures, not prose; the offensive sets live in off/ (and are rot13-flagged).
skip_fortune_sets="ascii-art"

die() { echo "extract.sh: $*" >&2; exit 1; }

for tool in bible dpkg-deb sha256sum awk; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup-deps.sh)"
done
cxx="${CXX:-c++}"
command -v "$cxx" >/dev/null || die "no C++ compiler '$cxx' (set CXX or install build-essential)"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
key="$(cat "$0" "$here/r_data.hpp" "$here/r_data.cpp" "$here/rdb_extract.cpp" | sha256sum | cut -c1-16)"
stamp="$out/.extracted"
files=(kjv-bible.txt fortunes.txt austen-emma.txt austen-mansfieldpark.txt
       austen-northangerabbey.txt austen-persuasion.txt austen-prideprejudice.txt
       austen-sensesensibility.txt)

up_to_date=1
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || up_to_date=0
for f in "${files[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then
  echo "extract.sh: corpus in $out is up to date"
  exit 0
fi

stage="$(mktemp -d "$out/.staging.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

# --- the extractor for R data, built once per source version ---------------------------------
tool="$out/.tools/rdb_extract-$key"
if [ ! -x "$tool" ]; then
  mkdir -p "$out/.tools"
  "$cxx" -std=c++20 -O2 -o "$stage/rdb_extract" "$here/rdb_extract.cpp" "$here/r_data.cpp" -lz \
    || die "building the R data extractor failed (needs zlib1g-dev)"
  mv -f "$stage/rdb_extract" "$tool"
fi

# --- King James Bible -------------------------------------------------------------------------
# Lines look like "1Sm3:4 text"; the reference is dropped and a blank line closes each chapter.
bible -f gen1:1-rev22:21 | awk '
  match($0, /^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ /) {
    ref = substr($0, 1, RLENGTH - 1); sub(/:[0-9]+$/, "", ref)
    if (ref != chapter && NR > 1) print ""
    chapter = ref
    print substr($0, RLENGTH + 1)
    next
  }
  { print "extract.sh: unexpected bible line " NR ": " $0 > "/dev/stderr"; exit 1 }
' > "$stage/kjv-bible.txt"
[ "$(grep -c . "$stage/kjv-bible.txt")" = 31102 ] || die "bible printed an unexpected verse count"

# --- Jane Austen (R lazy-load data, parsed by rdb_extract) -------------------------------------
rdata=/usr/lib/R/site-library/janeaustenr/data/Rdata
if [ ! -f "$rdata.rdb" ]; then
  deb="$(ls /var/cache/apt/archives/r-cran-janeaustenr_*_all.deb 2>/dev/null | tail -n1 || true)"
  if [ -z "$deb" ]; then
    if ! (cd "$stage" && apt-get download -q r-cran-janeaustenr >/dev/null 2>&1); then
      # A fresh machine may have no package lists yet: refresh them once (as root) and retry.
      if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
      (cd "$stage" && apt-get download -q r-cran-janeaustenr >/dev/null 2>&1) \
        || die "apt-get download r-cran-janeaustenr failed (run 'apt-get update' first?)"
    fi
    deb="$(ls "$stage"/r-cran-janeaustenr_*.deb | tail -n1)"
  fi
  dpkg-deb -x "$deb" "$stage/deb" || die "cannot unpack $deb"
  rdata="$stage/deb/usr/lib/R/site-library/janeaustenr/data/Rdata"
fi
"$tool" "$rdata" "$stage" austen- >/dev/null

# --- fortunes ------------------------------------------------------------------------------------
# Items are separated by "%" lines. Inside an item: overstrike sequences (x BACKSPACE x) are
# reduced to the visible character, trailing blanks trimmed, blank lines dropped, so that one
# item stays one paragraph.
fortune_dir=/usr/share/games/fortunes
[ -d "$fortune_dir" ] || die "$fortune_dir missing (install fortunes and fortunes-min)"
: > "$stage/fortunes.txt"
for f in "$fortune_dir"/*; do
  name="$(basename "$f")"
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  case "$name" in *.dat|*.u8) continue ;; esac
  case " $skip_fortune_sets " in *" $name "*) continue ;; esac
  # STR_ROTATED (0x4) in the strfile header marks a rot13-encoded, i.e. offensive, set.
  if [ -f "$f.dat" ]; then
    flags="$(od -An -tu1 -j19 -N1 "$f.dat" | tr -d ' ')"
    [ $(( ${flags:-0} & 4 )) = 0 ] || continue
  fi
  sed -e ':a' -e 's/[^\x08]\x08//' -e 'ta' -e 's/[[:space:]]*$//' "$f" | awk '
    /^%$/ { if (n) { print ""; n = 0 } next }
    /^$/  { next }
    { print; n = 1 }
    END   { if (n) print "" }
  ' >> "$stage/fortunes.txt"
done
[ -s "$stage/fortunes.txt" ] || die "no fortunes found in $fortune_dir"

# --- publish ----------------------------------------------------------------------------------
for f in "${files[@]}"; do [ -s "$stage/$f" ] || die "internal: $f was not produced"; done
sync -f "$stage" 2>/dev/null || sync
for f in "${files[@]}"; do mv -f "$stage/$f" "$out/$f"; done
printf '%s\n' "$key" > "$stage/stamp" && mv -f "$stage/stamp" "$stamp"
echo "extract.sh: wrote ${#files[@]} files ($(cat "${files[@]/#/$out/}" | wc -c) bytes) to $out"
