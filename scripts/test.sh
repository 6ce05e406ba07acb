#!/usr/bin/env bash
# The test command: sets up (idempotent), builds the tests (setup.sh builds the product only) and
# runs the whole suite with ctest (GoogleTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --build build -j"$(nproc)"
# numpy reads our Megatron files and packed SFT data back as an independent peer: Debian's
# python3-numpy (setup-deps.sh), used through Debian's /usr/bin/python3.
# torch and transformers load our checkpoints as a user loads them (AutoModelForCausalLM,
# AutoTokenizer), peft our LoRA adapters; those checks skip, saying why, without them. torch from
# its CPU-only index. Debian's python3-torch (1.13) is too old for transformers 5.
python3 -c "import torch, transformers, safetensors, peft" 2>/dev/null || {
  python3 -c "import torch" 2>/dev/null ||
    python3 -m pip install --quiet --index-url https://download.pytorch.org/whl/cpu torch
  python3 -m pip install --quiet "transformers>=5" safetensors peft
} 2>/dev/null || echo "test.sh: torch/transformers/peft unavailable, the transformers and peft checks will skip"
# megatron-core's own readers load our Megatron shards (its datasets need torch only, hence
# --no-deps); that check skips, saying why, without it.
python3 -c "import megatron.core" 2>/dev/null || python3 -m pip install --quiet --no-deps megatron-core 2>/dev/null ||
  echo "test.sh: megatron-core unavailable, the megatron-core check will skip"
# tensorboard's own reader loads our event files (tests/report/check_tfevents.py; about 10 s to
# install); that check skips, saying why, without it.
python3 -c "import tensorboard" 2>/dev/null || python3 -m pip install --quiet tensorboard 2>/dev/null ||
  echo "test.sh: tensorboard unavailable, the TensorBoard check will skip"
# The build tests unpack a Debian base and write squashfs images (about 2 GB at their peak): say
# so up front when the disk is short, rather than leaving "No space left on device" mid-suite.
free_kb=$(df -Pk build | awk 'NR == 2 {print $4}')
if [ "${free_kb:-0}" -lt $((3 * 1024 * 1024)) ]; then
  echo "test.sh: only $((free_kb / 1024)) MB free under $(pwd)/build; the suite needs about 3 GB, the build tests will fail without it" >&2
fi
# Every skipped test is listed at the end with its reason (scripts/skipped_tests.py), so a check
# that could not run is seen, never taken for a pass.
rc=0
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 --output-junit ctest-junit.xml "$@" || rc=$?
python3 scripts/skipped_tests.py build/ctest-junit.xml || true
exit "$rc"
