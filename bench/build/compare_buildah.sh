#!/bin/sh
# The multi-stage Dockerfile of tests/build built by nemokit and by buildah
# (--isolation=chroot, the mode that works on these machines) from the same
# base, then both trees compared: paths, types, modes, owners, link targets and
# content hashes (timestamps aside; the four enroot files nemokit adds for
# pyxis are left out). Prints both cold build times and their ratio.
#   bench/build/compare_buildah.sh BUILD_DIR     (needs root and buildah)
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$build/bench/build/compare
rm -rf "$work"; mkdir -p "$work"
base=$build/tests/build/base
[ -f "$base/base.tar" ] || sh "$src/tests/build/make_test_base.sh" "$base"

cp -a "$src/tests/build/multistage" "$work/ctx"
mkdir -p "$work/bundle/bin"
printf 'from a tar\n' > "$work/bundle/readme.txt"
printf '#!/bin/sh\necho tool\n' > "$work/bundle/bin/tool"; chmod 755 "$work/bundle/bin/tool"
tar --owner=7 --group=8 -C "$work/bundle" -czf "$work/ctx/bundle.tar.gz" readme.txt bin
# Debian 12's buildah (1.28) predates heredocs: both builders get the one RUN
# heredoc written as a plain RUN line.
python3 -c '
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"RUN <<EOF\nset -e\n(.*?)\nEOF\n", r"RUN \1\n", s, flags=re.S)
open(p, "w").write(s)
' "$work/ctx/Dockerfile"

now() { date +%s.%N; }
t0=$(now)
NEMOKIT_BUILD_CACHE_DIR=$work/cache "$build/bin/nemokit" build -f "$work/ctx/Dockerfile" --context "$work/ctx" \
  --tag compare --build-arg "BASE_IMAGE=docker-archive:$base/base.tar" > "$work/nemokit.log" 2>&1 ||
  { tail -20 "$work/nemokit.log"; exit 1; }
t1=$(now)
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
buildah --root "$work/buildah-root" --runroot "$work/buildah-run" bud --isolation=chroot --layers=false \
  --build-arg "BASE_IMAGE=docker-archive:$base/base.tar" -f "$work/ctx/Dockerfile" -t nemokit-compare \
  "$work/ctx" > "$work/buildah.log" 2>&1 || { tail -20 "$work/buildah.log"; exit 1; }
t2=$(now)

mkdir -p "$work/ours"
mount -t squashfs -o loop,ro "$work/cache/containers/compare.sqsh" "$work/ours"
ctr=$(buildah --root "$work/buildah-root" --runroot "$work/buildah-run" from nemokit-compare)
theirs=$(buildah --root "$work/buildah-root" --runroot "$work/buildah-run" mount "$ctr")
# buildah leaves the mount points of its RUN steps in the image (empty
# /etc/hostname, /etc/hosts, /etc/resolv.conf and /run); nemokit keeps them out.
status=0
python3 "$src/bench/build/tree_diff.py" "$work/ours" "$theirs" --skip etc/rc --skip etc/rc.local \
  --skip etc/environment --skip etc/fstab --any-content usr/local/bin/hello \
  --skip-theirs etc/hostname --skip-theirs etc/hosts --skip-theirs etc/resolv.conf --skip-theirs run || status=$?
umount "$work/ours"
buildah --root "$work/buildah-root" --runroot "$work/buildah-run" umount "$ctr" > /dev/null
buildah --root "$work/buildah-root" --runroot "$work/buildah-run" rm "$ctr" > /dev/null
python3 -c "import sys; a=$t1-$t0; b=$t2-$t1; print(f'cold build: nemokit {a:.2f} s, buildah {b:.2f} s, buildah/nemokit {b/a:.2f}x')"
exit $status
