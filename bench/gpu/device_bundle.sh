#!/usr/bin/env bash
# Packs what bench/gpu/check.sh runs into one archive for a GPU machine that has CUDA and Python
# (torch, transformers) but none of nemokit's Debian libraries and no package registry: the
# programs, plugins and libraries of BUILD_DIR, stripped, at their paths in the build folder;
# under build/deps the shared libraries they load from this machine (glibc, libstdc++ and
# CUDA's own left out: the GPU machine has newer ones, and ours would shadow them for PyTorch);
# and the tiny pretraining's prepared data (NEMOKIT_DATA_DIR's nano3-pretrain-tiny).
#
#   bench/gpu/device_bundle.sh [BUILD_DIR] [OUT]     (default: build, .device-bundle)
#
# Build first: the targets check.sh names (its header). On the GPU machine, from the checkout:
#   mkdir -p /tmp/nk && tar xzf OUT/bundle.tar.gz -C /tmp/nk &&
#   NEMOKIT_DATA_DIR=/tmp/nk/data bash bench/gpu/check.sh /tmp/nk/build
# (check.sh puts build/deps and build/sdk/runtime on its programs' library path).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=${2:-$root/.device-bundle}
data=${NEMOKIT_DATA_DIR:-$HOME/.cache/nemokit/data}/nano3-pretrain-tiny

programs=(bin/nemokit tests/gpu/cuda_op_check bench/gpu/gpu_train_bench tests/runtime/comm_rank_program
  tests/runtime/runtime_device_tensor_test)
libraries=(sdk/runtime/libnemokit_runtime.so.0 sdk/runtime/libnemokit_runtime_cuda.so
  lib/nemokit/plugins/stage_pretrain.so)
for f in "${programs[@]}" "${libraries[@]}"; do
  [ -e "$build/$f" ] || { echo "device_bundle: missing $build/$f (build the targets check.sh names)" >&2; exit 2; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build/deps"
for f in "${programs[@]}" "${libraries[@]}"; do
  mkdir -p "$stage/build/$(dirname "$f")"
  cp -L "$build/$f" "$stage/build/$f"
  strip --strip-debug "$stage/build/$f"
done
# The plugin folder must not be writable by others (the plugin host refuses it).
chmod 755 "$stage/build/lib/nemokit/plugins"

# What the dynamic loader resolves here for every packed file, less the system's own.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libstdc\+\+|libgcc_s|libcuda\.so|libcudart|libcublas|libnccl|libnemokit_runtime)'
for f in "${programs[@]}" "${libraries[@]}"; do
  ldd "$build/$f" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] || cp -L "$path" "$stage/build/deps/$name"
done

if [ -d "$data" ]; then
  mkdir -p "$stage/data"
  cp -r "$data" "$stage/data/"
else
  echo "device_bundle: no prepared data at $data: the pretraining row will be skipped there" >&2
fi

mkdir -p "$out"
tar czf "$out/bundle.tar.gz" -C "$stage" .
echo "$out/bundle.tar.gz: $(du -h "$out/bundle.tar.gz" | cut -f1) ($(ls "$stage/build/deps" | wc -l) libraries in build/deps)"
