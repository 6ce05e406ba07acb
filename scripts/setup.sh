#!/usr/bin/env bash
# Sets nemokit up on a fresh Debian 12 machine: every Debian dependency, the real training text
# from Debian's packages, and the product's build (build/: the nemokit program and its plugins;
# the tests build in scripts/test.sh). Safe to run again; later runs only rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
if [ -x plugins/stage_pretrain/corpus/extract.sh ]; then
  bash plugins/stage_pretrain/corpus/extract.sh
fi
if [ -x plugins/stage_sft/corpus/make_chats.sh ]; then
  bash plugins/stage_sft/corpus/make_chats.sh
fi
if [ -x plugins/stage_sft/corpus/make_omni_chats.sh ]; then
  bash plugins/stage_sft/corpus/make_omni_chats.sh
fi
if [ -x plugins/stage_rl/corpus/make_tasks.sh ]; then
  bash plugins/stage_rl/corpus/make_tasks.sh
fi
if [ -x plugins/stage_rl/corpus/make_swe_tasks.sh ]; then
  bash plugins/stage_rl/corpus/make_swe_tasks.sh
fi

build_type=${NEMOKIT_BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build build -j"$(nproc)" --target nemokit_product
echo "setup: built build/bin/nemokit and its plugins"
