#!/bin/sh
# Rootless against root: the 10-step Dockerfile of rebuild_bench.sh built cold (an empty build
# cache each time, so the base is unpacked, every step runs and the squashfs is written) by
# root and by an ordinary user with a /etc/subuid range (rootless: a user namespace mapped by
# newuidmap, overlayfs with userxattr), best of REPEAT each, interleaved; buildah's cold build
# (as root, --isolation=chroot, vfs) beside them where buildah is installed.
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
buildah_build() {
  rm -rf "$work/buildah-root" "$work/buildah-run"
  STORAGE_DRIVER=vfs buildah --root "$work/buildah-root" --runroot "$work/buildah-run" bud --isolation=chroot \
    --build-arg "BASE_IMAGE=docker-archive:$work/base.tar" -f "$work/ctx/Dockerfile" -t nemokit-rootless-bench \
    "$work/ctx" > "$work/buildah.log" 2>&1 || { tail -20 "$work/buildah.log"; exit 1; }
}
timed() { t0=$(now); $1; t1=$(now); python3 -c "print($t1 - $t0)"; }
best() { python3 -c 'import sys; print(min(float(x) for x in sys.argv[1:]))' "$@"; }

r="" u=""
for i in $(seq 1 "$repeat"); do
  r="$r $(timed root_build)"
  u="$u $(timed user_build)"
done
grep -q "steps run, 0 cached" "$work/user.log" || { echo "the rootless build took steps from a cache"; tail -3 "$work/user.log"; exit 1; }
# Same tree either way: the image's owners kept by the rootless build.
unsquashfs -lln -d "" "$work/root-cache/containers/bench.sqsh" | awk '{print $1, $2, $NF}' | sort > "$work/root.list"
unsquashfs -lln -d "" "$work/user-cache/containers/bench.sqsh" | awk '{print $1, $2, $NF}' | sort > "$work/user.list"
cmp -s "$work/root.list" "$work/user.list" && same=yes || same="NO (diff $work/root.list $work/user.list)"
b=""
command -v buildah > /dev/null && b=$(timed buildah_build)
python3 - "$(best $r)" "$(best $u)" "$b" "$same" "$repeat" <<'PY'
import sys
r, u = float(sys.argv[1]), float(sys.argv[2]); b = sys.argv[3]; same = sys.argv[4]; n = sys.argv[5]
print(f"cold build of a 10-step Dockerfile, best of {n}:")
print(f"  root     {r:6.2f} s")
print(f"  rootless {u:6.2f} s   rootless/root {u/r:.2f}x (goal <= 1.2x: {'met' if u/r <= 1.2 else 'NOT met'})")
if b:
    b = float(b)
    print(f"  buildah  {b:6.2f} s   (as root, one run) rootless/buildah {u/b:.2f}x (goal <= 0.25x: {'met' if u/b <= 0.25 else 'NOT met'})")
print(f"  same tree, owners and modes (unsquashfs -lln): {same}")
PY
