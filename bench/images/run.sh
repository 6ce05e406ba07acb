#!/usr/bin/env bash
# Image -> squashfs benchmark. Builds a three-layer image (~550 MB of real files,
# whiteouts and an opaque folder in the top layer) and converts it three ways,
# in this one run, at the same compressor, level and block size:
#   ours      nemokit image convert (one streaming pass, libsquashfs workers)
#   enroot    enroot's pipeline: extract each layer with tar (in parallel),
#             whiteouts to overlayfs form, overlay mount, mksquashfs -processors N
#   tar2sqfs  tar2sqfs -j N on the already flattened tar (flattening not timed)
# Prints wall times, ratios against ours, and output sizes. Needs root (overlay
# mount), GNU tar, zstd, squashfs-tools, squashfs-tools-ng, python3.
#
# usage: bench/images/run.sh [BUILD_DIR] [ZSTD_LEVEL] [LAYER_COMPRESSION] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LEVEL=${2:-3}
LAYERCOMP=${3:-zstd}
REPEAT=${4:-1}
CORES=$(nproc)
BLOCK=131072
WORK=${BENCH_WORK:-/tmp/nemokit-bench-images}

cleanup() { mountpoint -q "$WORK/enroot/rootfs" 2>/dev/null && umount "$WORK/enroot/rootfs"; true; }
trap cleanup EXIT
cleanup
rm -rf "$WORK"
mkdir -p "$WORK"

LIB="$BUILD/plugins/builder_oci/libnemokit_oci.a"
RTLIB="$BUILD/sdk/runtime/libnemokit_runtime.so"
[ -f "$LIB" ] && [ -f "$RTLIB" ] || { echo "build nemokit_oci first: cmake --build $BUILD --target nemokit_oci" >&2; exit 2; }
c++ -O2 -std=c++20 -Iplugins/builder_oci/include bench/images/convert_main.cpp "$LIB" \
    "$RTLIB" -Wl,-rpath,"$(cd "$(dirname "$RTLIB")" && pwd)" \
    $(pkg-config --libs libarchive libsquashfs1) $(pkg-config --libs libcurl libzstd 2>/dev/null) -lpthread \
    -o "$WORK/nemokit-image"

echo "== building the image ($LAYERCOMP layers)"
python3 bench/images/make_image.py --out "$WORK/oci" --compression "$LAYERCOMP" \
    --layer usr/lib/gcc \
    --layer usr/include/boost,usr/lib/python3.11 \
    --layer usr/share/man \
    --whiteout usr/include/boost/asio --whiteout usr/lib/gcc/x86_64-linux-gnu/12/cc1plus \
    --opaque usr/lib/python3.11/test
mapfile -t LAYERS < <(python3 -c '
import json,sys
d=sys.argv[1]
idx=json.load(open(d+"/index.json"))
m=json.load(open(d+"/blobs/sha256/"+idx["manifests"][0]["digest"][7:]))
for l in m["layers"]: print(d+"/blobs/sha256/"+l["digest"][7:])' "$WORK/oci")
du -sh "$WORK/oci" | sed 's/^/stored image: /'
cat "${LAYERS[@]}" > /dev/null  # same warm page cache for every contender

now() { date +%s.%N; }
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }

run_ours() {
    rm -f "$WORK/ours.sqsh"
    local t0; t0=$(now)
    "$WORK/nemokit-image" convert "oci:$WORK/oci" "$WORK/ours.sqsh" --comp zstd --level "$LEVEL" --block-size "$BLOCK"
    python3 -c "print($(now) - $t0)"
}

run_enroot() {
    cleanup
    rm -rf "$WORK/enroot" "$WORK/enroot.sqsh"
    mkdir -p "$WORK/enroot/rootfs"
    local t0; t0=$(now)
    local i=0 lower=""
    for blob in "${LAYERS[@]}"; do
        i=$((i + 1)); mkdir "$WORK/enroot/$i"
        lower="$i${lower:+:$lower}"
    done
    i=0
    for blob in "${LAYERS[@]}"; do
        i=$((i + 1)); printf '%s\t%s\n' "$i" "$blob"
    done | xargs -P "$CORES" -L 1 bash -c 'tar -C "'"$WORK"'/enroot/$0" --warning=no-timestamp -pxf "$1"'
    seq 1 "${#LAYERS[@]}" | xargs -P "$CORES" -I{} python3 bench/images/aufs2ovl.py "$WORK/enroot/{}"
    (cd "$WORK/enroot" && mount -t overlay overlay -o "lowerdir=$lower" rootfs)
    mksquashfs "$WORK/enroot/rootfs" "$WORK/enroot.sqsh" -comp zstd -Xcompression-level "$LEVEL" \
        -b "$BLOCK" -processors "$CORES" -all-root -noappend -no-progress -quiet > /dev/null
    python3 -c "print($(now) - $t0)"
}

run_tar2sqfs() {
    rm -f "$WORK/tar2sqfs.sqsh"
    local t0; t0=$(now)
    tar2sqfs -q -j "$CORES" -c zstd -X "level=$LEVEL" -b "$BLOCK" "$WORK/tar2sqfs.sqsh" < "$WORK/flat.tar"
    python3 -c "print($(now) - $t0)"
}

OURS=() ENROOT=() T2S=()
for r in $(seq 1 "$REPEAT"); do
    echo "== round $r"
    ENROOT+=("$(run_enroot)")
    if [ ! -f "$WORK/flat.tar" ]; then
        tar -C "$WORK/enroot/rootfs" --numeric-owner -cf "$WORK/flat.tar" .
        cat "$WORK/flat.tar" > /dev/null
    fi
    cleanup
    OURS+=("$(run_ours)")
    T2S+=("$(run_tar2sqfs)")
done
run_enroot > /dev/null  # leave the merged tree mounted for the content check

o=$(best "${OURS[@]}"); e=$(best "${ENROOT[@]}"); t=$(best "${T2S[@]}")
so=$(stat -c %s "$WORK/ours.sqsh"); se=$(stat -c %s "$WORK/enroot.sqsh"); st=$(stat -c %s "$WORK/tar2sqfs.sqsh")

# Same files either way (ours also holds enroot's /etc/rc, /etc/environment, ...).
mkdir -p "$WORK/ours-mnt"
mount -t squashfs -o loop,ro "$WORK/ours.sqsh" "$WORK/ours-mnt"
if diff -r --no-dereference -x etc "$WORK/ours-mnt" "$WORK/enroot/rootfs" > "$WORK/diff.txt"; then same=yes; else same="NO (see $WORK/diff.txt)"; fi
umount "$WORK/ours-mnt"

python3 - "$o" "$e" "$t" "$so" "$se" "$st" "$CORES" "$LEVEL" "$LAYERCOMP" "$same" <<'PY'
import sys
o, e, t = map(float, sys.argv[1:4]); so, se, st = map(int, sys.argv[4:7])
cores, level, lc, same = sys.argv[7:11]
print(f"\nzstd level {level}, 128 KiB blocks, {cores} cores, {lc} layers; best of the rounds")
print(f"{'':10} {'wall s':>8} {'vs ours':>8} {'output MB':>10} {'size vs mksquashfs':>19}")
print(f"{'ours':10} {o:8.2f} {1.0:8.2f} {so/1e6:10.1f} {so/se:19.3f}")
print(f"{'enroot':10} {e:8.2f} {e/o:8.2f} {se/1e6:10.1f} {1.0:19.3f}")
print(f"{'tar2sqfs':10} {t:8.2f} {t/o:8.2f} {st/1e6:10.1f} {st/se:19.3f}")
print(f"ours / enroot pipeline wall time: {o/e:.2f}x (goal <= 0.5x)")
print(f"same files as the enroot pipeline: {same}")
PY
