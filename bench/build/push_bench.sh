#!/bin/sh
# `nemokit image push` beside skopeo's copy of the same OCI layout, both to Debian's
# docker-registry on loopback, each into its own repository: an image of four 64 MiB layers of
# incompressible bytes (so the blobs are as large as the data), pushed cold, then again (every
# blob already there: only HEADs and the manifest). Prints the four times and the ratios.
#   bench/build/push_bench.sh BUILD_DIR     (needs root for the build, docker-registry and skopeo)
set -eu
build=$(cd "$1" && pwd)
work=$build/bench/build/push
rm -rf "$work"; mkdir -p "$work/ctx" "$work/storage"
command -v docker-registry > /dev/null && command -v skopeo > /dev/null ||
  { echo "push_bench: needs docker-registry and skopeo (scripts/setup-deps.sh)"; exit 1; }
for i in 1 2 3 4; do head -c 67108864 /dev/urandom > "$work/ctx/part$i.bin"; done
printf 'FROM scratch\nCOPY part1.bin /\nCOPY part2.bin /\nCOPY part3.bin /\nCOPY part4.bin /\n' > "$work/ctx/Dockerfile"
export NEMOKIT_BUILD_CACHE_DIR=$work/cache
"$build/bin/nemokit" build -f "$work/ctx/Dockerfile" --tag pushbench > "$work/build.log" 2>&1 ||
  { tail -20 "$work/build.log"; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/storage" "$port" > "$work/config.yml"
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null' EXIT
until curl -fs "http://127.0.0.1:$port/v2/" > /dev/null; do sleep 0.1; done

now() { date +%s.%N; }
layout="oci:$work/cache/oci/pushbench:pushbench"
t0=$(now); "$build/bin/nemokit" image push pushbench "127.0.0.1:$port/bench/nemokit:v1" > /dev/null 2> "$work/push1.log"
t1=$(now); skopeo copy -q --dest-tls-verify=false "$layout" "docker://127.0.0.1:$port/bench/skopeo:v1"
t2=$(now); "$build/bin/nemokit" image push pushbench "127.0.0.1:$port/bench/nemokit:v1" > /dev/null 2> "$work/push2.log"
t3=$(now); skopeo copy -q --dest-tls-verify=false "$layout" "docker://127.0.0.1:$port/bench/skopeo:v1"
t4=$(now)
tail -1 "$work/push1.log"; tail -1 "$work/push2.log"
python3 -c "
a,b,c,d = $t1-$t0, $t2-$t1, $t3-$t2, $t4-$t3
print(f'cold push (256 MiB): nemokit {a:.2f} s, skopeo {b:.2f} s, skopeo/nemokit {b/a:.2f}x')
print(f'push again (all blobs there): nemokit {c:.2f} s, skopeo {d:.2f} s, skopeo/nemokit {d/c:.2f}x')"
