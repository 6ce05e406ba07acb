#!/usr/bin/env bash
# GRPO over several ranks on this machine, against its peer in the same run: the tiny nano3 RL
# config (32 prompts x 8 samples a step) as 2 ranks x 1 thread (each rank samples and trains its
# half of every step's prompts, gradients all-reduced over MPI) against 1 rank x 2 threads, and
# as 2 expert-parallel ranks x 1 thread (the routed experts split, generation stepping both ranks
# together). Prints the median step time and rollout tokens/s of each and the ratios.
#
#   bench/rl/data_parallel.sh [BUILD_DIR] [STEPS]   (cmake --build BUILD --target nemokit_product)
#
# The SFT model GRPO starts from is made first: the tiny pretraining and SFT, a few steps each,
# in the script's own temporary folder (nothing under ~/.cache/nemokit is written).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
steps=${2:-6}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export NEMOKIT_CHECKPOINT_DIR="$work/ckpt" NEMOKIT_DATA_DIR="$work/data" NEMOKIT_ARTIFACTS_ROOT="$work/store"
nemokit=$build/bin/nemokit

stage() {  # LOG ARGS...: a run that must succeed
  local log=$work/$1.log
  shift
  NEMOKIT_JOB_ROOT="$work/jobs" "$nemokit" "$@" >"$log" 2>&1 || { echo "$* failed:"; tail -20 "$log"; exit 1; }
}
echo "== the starting model: tiny pretraining (40 steps), then SFT (20 steps)"
stage pretrain run nano3 pretrain -c tiny train.max_steps=40 train.sample_tokens=0
stage sft run nano3 sft -c tiny train.max_steps=20 train.eval_interval=0

# Median step_seconds and rollout_tokens_per_s of the steps after the first (warm-up).
medians() {
  python3 -c 'import json,sys,statistics
m=[json.loads(l) for l in open(sys.argv[1])]
m=[x for x in m if "step_seconds" in x][1:]
secs=statistics.median(x["step_seconds"] for x in m)
tps=statistics.median(x["rollout_tokens_per_s"] for x in m)
print(f"{secs:.3f} {tps:.0f}")' "$1"
}

grpo() {  # NAME THREADS RANKS EXTRA...
  local name=$1 threads=$2 ranks=$3
  shift 3
  NEMOKIT_NUM_THREADS=$threads NEMOKIT_JOB_ROOT="$work/jobs-$name" "$nemokit" run nano3 rl -c tiny \
    train.max_steps="$steps" train.eval_interval=0 train.save_interval=0 eval.max_tasks=0 \
    checkpoint.dir="$work/rl-$name" +run.nproc_per_node="$ranks" "$@" >"$work/rl-$name.log" 2>&1 ||
    { echo "GRPO $name failed:"; tail -20 "$work/rl-$name.log"; exit 1; }
  medians "$(ls -d "$work/jobs-$name"/*/ | head -1)metrics.jsonl"
}

echo "== GRPO, tiny nano3 RL config, $steps steps (median of steps 2..$steps)"
read -r t_secs t_tps < <(grpo threads 2 1)
read -r r_secs r_tps < <(grpo ranks 1 2)
read -r e_secs e_tps < <(grpo experts 1 2 +parallel.ep=2)
printf '1 rank  x 2 threads            : %6.3f s/step, rollouts %7d tokens/s\n' "$t_secs" "$t_tps"
printf '2 ranks x 1 thread             : %6.3f s/step, rollouts %7d tokens/s\n' "$r_secs" "$r_tps"
printf '2 ranks x 1 thread, experts/2  : %6.3f s/step, rollouts %7d tokens/s\n' "$e_secs" "$e_tps"
python3 -c "import sys; t,r,e=map(float,sys.argv[1:]); print(f'steps/s ratio to 1 rank x 2 threads: data parallel {t/r:.2f}, expert parallel {t/e:.2f}')" \
  "$t_secs" "$r_secs" "$e_secs"
