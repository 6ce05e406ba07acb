#!/usr/bin/env bash
# Wall time of `nemokit recipes` (plugin discovery: every manifest read, no plugin code run)
# with the four in-tree plugins, and with 20 extra real plugins on NEMOKIT_PLUGIN_PATH (copies of
# the out-of-tree example, each given its own name and family with objcopy). The peer is
# `nemokit --version` in the same run: the process start-up floor. Goal: under 30 ms.
# Usage: bench/plugins/recipes_startup.sh [BUILD_DIR]   (default build/)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$root/sdk/examples/hello_stage" -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/example" >/dev/null
mkdir -p "$work/extra"
for i in $(seq -w 1 20); do
  # Same-length names keep every section where it was, so the copies stay loadable.
  sed -e "s/\"hello_stage\"/\"hellostg_$i\"/" -e "s/\"example\"/\"exmpl$i\"/" \
      "$root/sdk/examples/hello_stage/manifest.json" > "$work/manifest_$i.json"
  objcopy --update-section nemokit_manifest="$work/manifest_$i.json" \
          "$work/example/hello_stage.so" "$work/extra/hello_stage_$i.so"
done
nemokit="$work/prefix/bin/nemokit"
n_extra=$(NEMOKIT_PLUGIN_PATH="$work/extra" "$nemokit" recipes 2>/dev/null | grep -c "^exmpl")
[ "$n_extra" = 20 ] || { echo "expected 20 extra recipes, got $n_extra" >&2; exit 1; }

# Median of N runs, in milliseconds.
median_ms() {
  local n=41 times=()
  for _ in $(seq $n); do
    local t0 t1
    t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v n=$n 'NR == int(n/2)+1 { printf "%.2f", $1 / 1000 }'
}
base=$(median_ms "$nemokit" --version)
four=$(median_ms "$nemokit" recipes)
extra=$(NEMOKIT_PLUGIN_PATH="$work/extra" median_ms env NEMOKIT_PLUGIN_PATH="$work/extra" "$nemokit" recipes)
echo "nemokit --version (peer: start-up floor)     ${base} ms"
echo "nemokit recipes, 4 plugins                   ${four} ms   ($(awk -v a="$four" -v b="$base" 'BEGIN{printf "%.2f", a/b}')x the floor)"
echo "nemokit recipes, 4 + 20 plugins              ${extra} ms   ($(awk -v a="$extra" -v b="$base" 'BEGIN{printf "%.2f", a/b}')x the floor)"
awk -v e="$extra" 'BEGIN { exit !(e < 30) }' && echo "goal (< 30 ms with 24 plugins): met" || echo "goal (< 30 ms with 24 plugins): NOT met"
