#!/usr/bin/env bash
# Expert parallel on this machine, against its peers in the same run: training tokens/s of the
# tiny nano3 pretraining config (same global batch, same 2 cores) as
#   1 rank x 2 threads                  (every expert, the whole batch),
#   2 ranks x 1 thread, data parallel   (every expert on each rank, gradients all-reduced),
#   2 ranks x 1 thread, expert parallel (parallel.ep = 2: half the experts on each rank, tokens
#                                        sent to their experts' rank and back by all-to-all),
# and the ratios of the two-rank runs to the one-rank run.
# Usage: bench/runtime/expert_parallel.sh [BUILD_DIR] [STEPS]   (cmake --build BUILD --target nemokit stage_pretrain)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
steps=${2:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

# Median tokens_per_s of the steps after the first two (warm-up), from a job's metrics.jsonl.
median_tps() {
  python3 -c 'import json,sys,statistics
v=[json.loads(l)["tokens_per_s"] for l in open(sys.argv[1]) if "tokens_per_s" in l][2:]
print(f"{statistics.median(v):.0f}")' "$1"
}

train() {  # NAME THREADS RANKS [OVERRIDES...]
  local name=$1 threads=$2 ranks=$3 job_root="$work/jobs-$1"
  shift 3
  NEMOKIT_NUM_THREADS=$threads NEMOKIT_JOB_ROOT="$job_root" "$build/bin/nemokit" run nano3 pretrain -c tiny \
    train.max_steps="$steps" train.eval_steps=0 train.save_interval=0 train.sample_tokens=0 \
    checkpoint.dir="$work/ckpt-$name" +run.nproc_per_node="$ranks" "$@" >"$work/$name.log" 2>&1 ||
    { echo "training $name failed:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
  median_tps "$(ls -d "$job_root"/*/ | head -1)metrics.jsonl"
}

echo "== tiny nano3 pretraining, $steps steps, tokens/s"
one=$(train one 2 1)
dp=$(train dp 1 2)
ep=$(train ep 1 2 +parallel.ep=2)
python3 - "$one" "$dp" "$ep" <<'PY'
import sys
one, dp, ep = map(int, sys.argv[1:])
print(f"1 rank  x 2 threads              : {one} tokens/s")
print(f"2 ranks x 1 thread, data parallel  : {dp} tokens/s ({dp / one:.2f} of 1 rank)")
print(f"2 ranks x 1 thread, expert parallel: {ep} tokens/s ({ep / one:.2f} of 1 rank, {ep / dp:.2f} of data parallel)")
PY
