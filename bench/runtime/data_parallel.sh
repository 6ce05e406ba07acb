#!/usr/bin/env bash
# Data parallel on this machine, each figure against its peer in the same run:
#  1. training tokens/s of the tiny nano3 pretraining config as 2 ranks x 1 thread (mpirun, the
#     gradients all-reduced over MPI) against 1 rank x 2 threads (the same global batch), and
#     their ratio (the scaling efficiency of going wide by processes instead of threads);
#  2. the all-reduce bandwidth of the runtime's MPI communicator (bench_allreduce) against Open
#     MPI's own MPI_Allreduce (allreduce_peer) for the same message sizes, both under mpirun -n 2.
# Usage: bench/runtime/data_parallel.sh [BUILD_DIR] [STEPS]   (cmake --build BUILD --target nemokit stage_pretrain benches)
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

train() {  # NAME THREADS RANKS
  local job_root="$work/jobs-$1"
  NEMOKIT_NUM_THREADS=$2 NEMOKIT_JOB_ROOT="$job_root" "$build/bin/nemokit" run nano3 pretrain -c tiny \
    train.max_steps="$steps" train.eval_steps=0 train.save_interval=0 train.sample_tokens=0 \
    checkpoint.dir="$work/ckpt-$1" +run.nproc_per_node="$3" >"$work/$1.log" 2>&1 ||
    { echo "training $1 failed:"; tail -20 "$work/$1.log"; exit 1; }
  median_tps "$(ls -d "$job_root"/*/ | head -1)metrics.jsonl"
}

echo "== tiny nano3 pretraining, $steps steps, global batch 16 x 128 tokens"
threads=$(train threads 2 1)
ranks=$(train ranks 1 2)
echo "1 rank  x 2 threads: $threads tokens/s"
echo "2 ranks x 1 thread : $ranks tokens/s"
python3 -c "import sys; print(f'ratio (2 ranks / 2 threads): {int(sys.argv[2])/int(sys.argv[1]):.2f}')" "$threads" "$ranks"

echo "== all-reduce (sum, float32), 2 ranks under mpirun: bytes, us per call, algbw GB/s, busbw GB/s"
sizes="4096 65536 1048576 8388608"
ours=$(mpirun -n 2 --oversubscribe --bind-to none "$build/bench/runtime/allreduce_bench" 10 $sizes)
peer=$(mpirun -n 2 --oversubscribe --bind-to none "$build/bench/runtime/allreduce_peer" 10 $sizes)
paste <(echo "$ours") <(echo "$peer") | awk '{printf "%10d B  nemokit %9.1f us %7.3f GB/s   MPI_Allreduce %9.1f us %7.3f GB/s   ratio %.2f\n", $1, $2, $3, $6, $7, $3/$7}'
