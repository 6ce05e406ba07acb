#!/bin/sh
# Rootless against root: the 10-step Dockerfile of rebuild_bench.sh built cold (an empty build
# cache each time, so the base is unpacked, every step runs and the squashfs is written) by
# root and by an ordinary user with a /etc/subuid range (rootless: a user namespace mapped by
# newuidmap, overlayfs with userxattr), best of REPEAT each, interleaved; buildah's cold build
# (as root, --isolation=chroot, vfs) beside them where buildah is installed.
# Then the same three with the base already in each tool's store (nemokit's layer store from one
# earlier build, `--no-cache`; buildah's storage after `buildah pull`): a cold build cache over a
# pulled base, which is what a user rebuilding an image meets.
# Goal (issue 17): rootless within 1.2x of root, and at most 0.25x buildah.
#   bench/build/rootless_bench.sh BUILD_DIR [REPEAT]   (as root: it makes the user with useradd)
set -eu
build=$(cd "$1" && pwd)
repeat=${2:-3}
src=$(cd "$(dirname "$0")/../.." && pwd)
user=nemokit-rootless
[ "$(id -u)" = 0 ] || { echo "run as root (it makes the user $user with useradd)" >&2; exit 2; }
id "$user" > /dev/null 2>&1 || useradd -m -s /bin/sh "$user"
grep -q "^$user:" /etc/subuid || { echo "$user has no range in /etc/subuid" >&2; exit 2; }

# Everything the user reads lives in a folder of its own (the build tree may be closed to it).
work=/tmp/nemokit-bench-rootless
rm -rf "$work"; mkdir -p "$work/ctx" "$work/prefix/bin"
base=$build/tests/build/base
[ -f "$base/base.tar" ] || sh "$src/tests/build/make_test_base.sh" "$base"
cp "$base/base.tar" "$work/base.tar"
cp "$build/bin/nemokit" "$work/prefix/bin/"
cp -r "$build/lib" "$work/prefix/lib"
cp -P "$build"/sdk/runtime/libnemokit_runtime.so* "$work/prefix/lib/"
cp "$src/tests/build/multistage/hello.c" "$work/ctx/"
seq 1 2000 > "$work/ctx/numbers.txt"
cat > "$work/ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV APP_HOME=/opt/app
WORKDIR /opt/app
COPY hello.c numbers.txt ./
RUN gcc -O2 -o hello hello.c
RUN ./hello > out.txt && cat numbers.txt > copy.txt && chown 1234:1234 copy.txt
LABEL bench=rootless
RUN mkdir -p /var/cache/bench && echo cached > /var/cache/bench/flag
USER app
ENTRYPOINT ["/opt/app/hello"]
DOCKERFILE
chmod -R a+rX "$work"

now() { date +%s.%N; }
args="build -f $work/ctx/Dockerfile --context $work/ctx --tag bench --build-arg BASE_IMAGE=docker-archive:$work/base.tar"
root_build() {
  rm -rf "$work/root-cache"
  NEMOKIT_BUILD_CACHE_DIR=$work/root-cache LD_LIBRARY_PATH=$work/prefix/lib "$work/prefix/bin/nemokit" $args \
    > "$work/root.log" 2>&1 || { tail -20 "$work/root.log"; exit 1; }
}
user_build() {
  rm -rf "$work/user-cache"; mkdir -p "$work/user-cache"; chown "$user" "$work/user-cache"
  setpriv --reuid="$user" --regid="$user" --init-groups -- env HOME="$work/user-cache" \
    NEMOKIT_BUILD_CACHE_DIR="$work/user-cache" LD_LIBRARY_PATH="$work/prefix/lib" "$work/prefix/bin/nemokit" $args \
    > "$work/user.log" 2>&1 || { tail -20 "$work/user.log"; exit 1; }
}
# As most cluster nodes are: a /dev/fuse the user may open (this machine's is root's alone), made
# in a mount namespace of the run's own, so the base's layers are squashfs files mounted with
# squashfuse instead of unpacked folders.
user_build_fuse() {
  rm -rf "$work/fuse-cache" "$work/fusedev"; mkdir -p "$work/fuse-cache" "$work/fusedev"; chown "$user" "$work/fuse-cache"
  unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs none "$0" && mknod -m 666 "$0/fuse" c 10 229 &&
    mount --bind "$0/fuse" /dev/fuse && exec "$@"' "$work/fusedev" \
    setpriv --reuid="$user" --regid="$user" --init-groups -- env HOME="$work/fuse-cache" \
    NEMOKIT_BUILD_CACHE_DIR="$work/fuse-cache" LD_LIBRARY_PATH="$work/prefix/lib" "$work/prefix/bin/nemokit" $args \
    > "$work/fuse.log" 2>&1 || { tail -20 "$work/fuse.log"; exit 1; }
}
buildah_build() {
  rm -rf "$work/buildah-root" "$work/buildah-run"
  STORAGE_DRIVER=vfs buildah --root "$work/buildah-root" --runroot "$work/buildah-run" bud --isolation=chroot \
    --build-arg "BASE_IMAGE=docker-archive:$work/base.tar" -f "$work/ctx/Dockerfile" -t nemokit-rootless-bench \
    "$work/ctx" > "$work/buildah.log" 2>&1 || { tail -20 "$work/buildah.log"; exit 1; }
}
# Base in the store: the caches are filled once (below) and kept; every step runs again.
root_build_stored() {
  NEMOKIT_BUILD_CACHE_DIR=$work/root-store LD_LIBRARY_PATH=$work/prefix/lib "$work/prefix/bin/nemokit" $args --no-cache \
    > "$work/root.log" 2>&1 || { tail -20 "$work/root.log"; exit 1; }
}
user_build_stored() {
  setpriv --reuid="$user" --regid="$user" --init-groups -- env HOME="$work/user-store" \
    NEMOKIT_BUILD_CACHE_DIR="$work/user-store" LD_LIBRARY_PATH="$work/prefix/lib" "$work/prefix/bin/nemokit" $args --no-cache \
    > "$work/user.log" 2>&1 || { tail -20 "$work/user.log"; exit 1; }
}
buildah_build_stored() {
  STORAGE_DRIVER=vfs buildah --root "$work/buildah-store" --runroot "$work/buildah-store-run" bud --isolation=chroot \
    --pull=never --build-arg BASE_IMAGE=localhost/nemokit-bench-base -f "$work/ctx/Dockerfile" -t nemokit-rootless-bench \
    "$work/ctx" > "$work/buildah.log" 2>&1 || { tail -20 "$work/buildah.log"; exit 1; }
}
# The artifact nemokit writes is a squashfs as well as the OCI image: buildah's peer for it is
# enroot's step after the build, mksquashfs of the image's tree (zstd level 3, nemokit's default,
# all cores), timed on its own and added to buildah's time.
buildah_squashfs() {
  b_="STORAGE_DRIVER=vfs buildah --root $work/buildah-store --runroot $work/buildah-store-run"
  ctr=$(env $b_ from --pull=never nemokit-rootless-bench)
  mnt=$(env $b_ mount "$ctr")
  rm -f "$work/buildah.sqsh"
  mksquashfs "$mnt" "$work/buildah.sqsh" -comp zstd -Xcompression-level 3 -processors "$(nproc)" -no-progress -quiet > /dev/null
  env $b_ umount "$ctr" > /dev/null; env $b_ rm "$ctr" > /dev/null
}
timed() { t0=$(now); $1; t1=$(now); python3 -c "print($t1 - $t0)"; }
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }

r="" u="" uf=""
for i in $(seq 1 "$repeat"); do
  r="$r $(timed root_build)"
  u="$u $(timed user_build)"
  uf="$uf $(timed user_build_fuse)"
done
ls "$work/fuse-cache/build/layers-userns" | grep -q '\.sqsh$' || { echo "the rootless build with /dev/fuse unpacked its base"; exit 1; }
unsquashfs -lln -d "" "$work/fuse-cache/containers/bench.sqsh" | awk '{print $1, $2, $NF}' | sort > "$work/fuse.list"
grep -q "steps run, 0 cached" "$work/user.log" || { echo "the rootless build took steps from a cache"; tail -3 "$work/user.log"; exit 1; }
# Same tree either way: the image's owners kept by the rootless build.
unsquashfs -lln -d "" "$work/root-cache/containers/bench.sqsh" | awk '{print $1, $2, $NF}' | sort > "$work/root.list"
unsquashfs -lln -d "" "$work/user-cache/containers/bench.sqsh" | awk '{print $1, $2, $NF}' | sort > "$work/user.list"
cmp -s "$work/root.list" "$work/user.list" && cmp -s "$work/root.list" "$work/fuse.list" && same=yes ||
  same="NO (diff $work/root.list $work/user.list $work/fuse.list)"
b=""
command -v buildah > /dev/null && b=$(timed buildah_build)

rm -rf "$work/root-store" "$work/user-store" "$work/buildah-store" "$work/buildah-store-run"
mkdir -p "$work/user-store"; chown "$user" "$work/user-store"
root_build_stored; user_build_stored
# buildah reads a docker-archive: base again on every build; the pulled image, named, it takes from
# its storage.
if command -v buildah > /dev/null; then
  id=$(STORAGE_DRIVER=vfs buildah --root "$work/buildah-store" --runroot "$work/buildah-store-run" \
    pull -q "docker-archive:$work/base.tar")
  STORAGE_DRIVER=vfs buildah --root "$work/buildah-store" --runroot "$work/buildah-store-run" tag "$id" localhost/nemokit-bench-base
fi
rs="" us="" bs=""
for i in $(seq 1 "$repeat"); do
  rs="$rs $(timed root_build_stored)"
  us="$us $(timed user_build_stored)"
  command -v buildah > /dev/null && bs="$bs $(timed buildah_build_stored)"
done
sq=""
command -v buildah > /dev/null && command -v mksquashfs > /dev/null && sq=$(timed buildah_squashfs)
grep -q "steps run, 0 cached" "$work/user.log" || { echo "the rootless build took steps from a cache"; tail -3 "$work/user.log"; exit 1; }
[ -n "$bs" ] && bs=$(best $bs)

python3 - "$(best $rs)" "$(best $us)" "$bs" "$repeat" "$sq" <<'PY'
import sys
r, u = float(sys.argv[1]), float(sys.argv[2]); b = sys.argv[3]; n = sys.argv[4]; sq = sys.argv[5]
print(f"base already in the store, no build cache (--no-cache), best of {n}:")
print(f"  root     {r:6.2f} s")
print(f"  rootless {u:6.2f} s   rootless/root {u/r:.2f}x (goal <= 1.2x: {'met' if u/r <= 1.2 else 'NOT met'})")
if b:
    b = float(b)
    print(f"  buildah  {b:6.2f} s   (as root, pulled base) rootless/buildah {u/b:.2f}x, root/buildah {r/b:.2f}x (goal <= 0.25x: {'met' if u/b <= 0.25 else 'NOT met'})")
    if sq:
        t = b + float(sq)
        print(f"  buildah + mksquashfs {t:6.2f} s   (the same artifact: {float(sq):.2f} s for the squashfs) rootless/that {u/t:.2f}x")
PY
python3 - "$(best $r)" "$(best $u)" "$b" "$same" "$repeat" "$(best $uf)" <<'PY'
import sys
r, u = float(sys.argv[1]), float(sys.argv[2]); b = sys.argv[3]; same = sys.argv[4]; n = sys.argv[5]; uf = float(sys.argv[6])
print(f"cold build of a 10-step Dockerfile, best of {n}:")
print(f"  root     {r:6.2f} s   (base layers: squashfs files, loop-mounted)")
print(f"  rootless {u:6.2f} s   rootless/root {u/r:.2f}x (goal <= 1.2x: {'met' if u/r <= 1.2 else 'NOT met'}) (no usable /dev/fuse: base unpacked)")
print(f"  rootless {uf:6.2f} s   rootless/root {uf/r:.2f}x (a 0666 /dev/fuse, as on most cluster nodes: squashfuse lowers)")
if b:
    b = float(b)
    for name, t in (("root", r), ("rootless", u), ("rootless+fuse", uf)):
        print(f"  {name}/buildah {t/b:.2f}x (goal <= 0.25x: {'met' if t/b <= 0.25 else 'NOT met'})")
    print(f"  buildah  {b:6.2f} s   (as root, one run)")
print(f"  same tree, owners and modes (unsquashfs -lln): {same}")
PY
