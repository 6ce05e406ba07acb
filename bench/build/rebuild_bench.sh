#!/bin/sh
# A 10-step Dockerfile (RUN, COPY, ENV, WORKDIR, ...) on the test base: a cold
# build, then rebuilds with everything cached, by nemokit and by buildah
# (--layers, --isolation=chroot). The goal: a cached rebuild under 1 s.
#   bench/build/rebuild_bench.sh BUILD_DIR     (needs root and buildah)
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$build/bench/build/rebuild
rm -rf "$work"; mkdir -p "$work/ctx"
base=$build/tests/build/base
[ -f "$base/base.tar" ] || sh "$src/tests/build/make_test_base.sh" "$base"
cp "$src/tests/build/multistage/hello.c" "$work/ctx/"
seq 1 2000 > "$work/ctx/numbers.txt"
cat > "$work/ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV APP_HOME=/opt/app
WORKDIR /opt/app
COPY hello.c numbers.txt ./
RUN gcc -O2 -o hello hello.c
RUN ./hello > out.txt && cat numbers.txt > copy.txt
LABEL bench=rebuild
RUN mkdir -p /var/cache/bench && echo cached > /var/cache/bench/flag
USER app
ENTRYPOINT ["/opt/app/hello"]
DOCKERFILE

now() { date +%s.%N; }
ours() {
  NEMOKIT_BUILD_CACHE_DIR=$work/cache "$build/bin/nemokit" build -f "$work/ctx/Dockerfile" --context "$work/ctx" \
    --tag rebuild --build-arg "BASE_IMAGE=docker-archive:$base/base.tar" > "$work/nemokit.log" 2>&1 ||
    { tail -20 "$work/nemokit.log"; exit 1; }
}
theirs() {
  STORAGE_DRIVER=vfs buildah --root "$work/buildah-root" --runroot "$work/buildah-run" bud --isolation=chroot \
    --layers --build-arg "BASE_IMAGE=docker-archive:$base/base.tar" -f "$work/ctx/Dockerfile" -t nemokit-rebuild \
    "$work/ctx" > "$work/buildah.log" 2>&1 || { tail -20 "$work/buildah.log"; exit 1; }
}
best() {  # best of 5 runs of $1, in seconds
  b=""
  for i in 1 2 3 4 5; do
    t0=$(now); $1; t1=$(now)
    b=$(python3 -c "import sys; t=$t1-$t0; b='$b'; print(t if not b else min(t, float(b)))")
  done
  echo "$b"
}
t0=$(now); ours; t1=$(now); theirs; t2=$(now)
grep -q "0 steps run" "$work/nemokit.log" && { echo "cold build took nothing from the cache?"; exit 1; } || true
r_ours=$(best ours)
grep -q "built rebuild: 0 steps run, 4 cached" "$work/nemokit.log" || { echo "rebuild was not fully cached"; tail -3 "$work/nemokit.log"; exit 1; }
r_theirs=$(best theirs)
python3 -c "
a=$t1-$t0; b=$t2-$t1; c=$r_ours; d=$r_theirs
print(f'cold build (10 steps): nemokit {a:.2f} s, buildah {b:.2f} s, buildah/nemokit {b/a:.2f}x')
print(f'cached rebuild (best of 5): nemokit {c*1000:.0f} ms, buildah {d*1000:.0f} ms, buildah/nemokit {d/c:.1f}x')
print('goal: cached rebuild under 1 s:', 'met' if c < 1.0 else 'NOT met')"
