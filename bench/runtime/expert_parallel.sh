#!/usr/bin/env bash
# Expert parallel on this machine, against its peers in the same run: training tokens/s of the
# tiny nano3 pretraining config (same global batch, same 2 cores) as
#   1 rank x 2 threads                  (every expert, the whole batch),
#   2 ranks x 1 thread, data parallel   (every expert on each rank, gradients all-reduced),
#   2 ranks x 1 thread, expert parallel (parallel.ep = 2: half the experts on each rank, tokens
#                                        sent to their experts' rank and back by all-to-all),
# and the ratios of the two-rank runs to the one-rank run. The three run in turn ROUNDS times and
# each figure is the median of its rounds: on a shared machine a moment's load moves one run by
# tens of percent, most of all expert parallel's, whose many small all-to-alls wait for both
# ranks to be on a core.
# Usage: bench/runtime/expert_parallel.sh [BUILD_DIR] [STEPS] [ROUNDS]   (cmake --build BUILD --target nemokit stage_pretrain)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
steps=${2:-12}
rounds=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# The prepared data (made by the first run) and the published models stay in this run's folder.
export NEMOKIT_DATA_DIR="$work/data" NEMOKIT_ARTIFACTS_ROOT="$work/artifacts"

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

echo "== tiny nano3 pretraining, $steps steps, tokens/s (median of $rounds rounds)"
ones=() dps=() eps=()
for r in $(seq "$rounds"); do
  ones+=("$(train "one-$r" 2 1)")
  dps+=("$(train "dp-$r" 1 2)")
  eps+=("$(train "ep-$r" 1 2 +parallel.ep=2)")
  echo "round $r: ${ones[-1]} / ${dps[-1]} / ${eps[-1]}"
done
python3 - "${ones[*]}" "${dps[*]}" "${eps[*]}" <<'PY'
import statistics, sys
one, dp, ep = (statistics.median(map(int, a.split())) for a in sys.argv[1:])
print(f"1 rank  x 2 threads                : {one:.0f} tokens/s")
print(f"2 ranks x 1 thread, data parallel  : {dp:.0f} tokens/s ({dp / one:.2f} of 1 rank)")
print(f"2 ranks x 1 thread, expert parallel: {ep:.0f} tokens/s ({ep / one:.2f} of 1 rank, {ep / dp:.2f} of data parallel)")
PY
