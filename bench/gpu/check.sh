#!/usr/bin/env bash
# Every GPU check of nemokit and the training benchmark in one go, for a machine with GPUs: prints one table,
# one row per check, and exits non-zero when a check failed. Checks that need more GPUs than the
# machine has are listed as "skipped" with the reason, never left out unseen.
#
#   bench/gpu/check.sh [BUILD_DIR]      (default: build)
#
# Build first: cmake --build BUILD_DIR --target nemokit stage_pretrain nemokit_runtime_cuda comm_rank_program \
#   cuda_op_check runtime_device_tensor_test gpu_train_bench
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || { echo "no build folder ${1:-$root/build}" >&2; exit 2; }
rank_program=$build/tests/runtime/comm_rank_program
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=()
failed=0
row() {  # name status detail
  rows+=("$(printf '%-34s %-8s %s' "$1" "$2" "$3")")
  [ "$2" = FAIL ] && failed=1
}

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
gpus=${gpus:-0}
[ -x "$rank_program" ] || { echo "missing $rank_program: build the target comm_rank_program" >&2; exit 2; }

# Open MPI refuses root unless told; the lent GPU machines run commands as root.
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# A port nobody listens on for the NCCL id rendezvous (MASTER_ADDR/MASTER_PORT, as the
# executors set them).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Our programs' library path: a bundle's libraries (device_bundle.sh: build/deps, the runtime
# beside the programs) for a machine without nemokit's Debian packages, then CUDA's (the
# toolkit's, else the wheels PyTorch brought). Only our programs get it (`ours`): PyTorch keeps
# its own libraries.
ours_ld=$build/sdk/runtime
[ -d "$build/deps" ] && ours_ld=$build/deps:$ours_ld
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && ours_ld=$ours_ld:$d; done
for d in $(python3 -c 'import glob, os, nvidia
for p in nvidia.__path__: print("\n".join(sorted(glob.glob(os.path.join(p, "**", "lib"), recursive=True))))' 2>/dev/null); do
  ours_ld=$ours_ld:$d
done
ours() { LD_LIBRARY_PATH="$ours_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

# ranks BACKEND N MODE ARGS...: N ranks of comm_rank_program under mpirun (the launcher only:
# the NCCL backend reads Open MPI's rank variables and meets over MASTER_ADDR/MASTER_PORT). One
# rank runs without mpirun where there is none (a GPU machine without Open MPI), its rank
# variables set by hand.
ranks() (  # a subshell: the exports stay inside
  backend=$1 n=$2
  shift 2
  export NEMOKIT_COMM_BACKEND=$backend NEMOKIT_COMM_TIMEOUT_S=${NEMOKIT_COMM_TIMEOUT_S:-60} WORLD_SIZE=$n \
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port)
  if [ "$n" = 1 ] && ! command -v mpirun >/dev/null; then
    RANK=0 LOCAL_RANK=0 ours timeout 120 "$rank_program" "$@"
  else
    ours timeout 120 mpirun -n "$n" --oversubscribe --bind-to none \
      -x NEMOKIT_COMM_BACKEND -x NEMOKIT_COMM_TIMEOUT_S -x WORLD_SIZE -x MASTER_ADDR -x MASTER_PORT -x LD_LIBRARY_PATH \
      "$rank_program" "$@"
  fi
)

# NCCL backend, one rank: every collective on one GPU (the rank program checks the values).
if [ "$gpus" -ge 1 ]; then
  if out=$(ranks nccl 1 collectives 2>&1); then row "nccl collectives, 1 rank" ok "$(echo "$out" | tail -1)"
  else row "nccl collectives, 1 rank" FAIL "$(echo "$out" | tail -1)"; fi
else
  row "nccl collectives, 1 rank" skipped "no GPU visible (nvidia-smi -L)"
fi

# NCCL against MPI, two ranks, one GPU each (NCCL refuses two ranks on one GPU): the same
# pseudo-random inputs through every collective must give the same bytes (a sum of two values
# is the same whichever side adds it, so the comparison is exact).
if [ "$gpus" -ge 2 ]; then
  ok=1 detail=""
  out=$(ranks mpi 2 dump "$work/mpi" 2>&1) || { ok=0 detail="mpi: $(echo "$out" | tail -1)"; }
  out=$(CUDA_VISIBLE_DEVICES=0,1 ranks nccl 2 collectives 2>&1) || { ok=0 detail="nccl collectives: $(echo "$out" | tail -1)"; }
  out=$(CUDA_VISIBLE_DEVICES=0,1 ranks nccl 2 dump "$work/nccl" 2>&1) || { ok=0 detail="nccl: $(echo "$out" | tail -1)"; }
  if [ $ok = 1 ]; then
    for r in 0 1; do
      cmp -s "$work/mpi.rank$r" "$work/nccl.rank$r" || { ok=0 detail="rank $r: $(cmp "$work/mpi.rank$r" "$work/nccl.rank$r" 2>&1)"; }
    done
  fi
  if [ $ok = 1 ]; then row "nccl == mpi, 2 ranks" ok "$(stat -c %s "$work/nccl.rank0") bytes per rank identical"
  else row "nccl == mpi, 2 ranks" FAIL "$detail"; fi
else
  row "nccl == mpi, 2 ranks" skipped "needs 2 GPUs, $gpus visible"
fi

# A stopped rank (SIGSTOP before a barrier) ends the NCCL job within the timeout, the error
# naming the collective and the rank, after ncclCommAbort (no hang).
if [ "$gpus" -ge 2 ]; then
  out=$(CUDA_VISIBLE_DEVICES=0,1 NEMOKIT_COMM_TIMEOUT_S=5 ranks nccl 2 stall 2>&1)
  line=$(echo "$out" | grep -m1 'nccl barrier' || true)
  if echo "$line" | grep -q 'timed out after 5 s on rank 0 of 2: rank 1 never arrived'; then
    row "nccl timeout names the rank" ok "$line"
  else
    row "nccl timeout names the rank" FAIL "$(echo "$out" | grep -m1 error || echo "$out" | tail -1)"
  fi
else
  row "nccl timeout names the rank" skipped "needs 2 GPUs, $gpus visible"
fi

# Tensors with CUDA storage: copies both ways, clone, zero, dtype conversion on the device.
tensor_test=$build/tests/runtime/runtime_device_tensor_test
if [ "$gpus" -lt 1 ]; then
  row "device tensors" skipped "no GPU visible (nvidia-smi -L)"
elif out=$(ours "$tensor_test" --gtest_filter='*OnTheGpu*' 2>&1) && echo "$out" | grep -q '\[  PASSED  \] 1 test'; then
  row "device tensors" ok "round trip, clone, zero, bf16 on the device"
else
  row "device tensors" FAIL "$(echo "$out" | grep -m1 -A2 'Failure' | tr '\n' ' ' || echo "$out" | tail -1)"
fi

# Every GPU kernel against the CPU reference on fresh random inputs, outputs poisoned first
# (tests/gpu/cuda_op_check): one row per case.
op_check=$build/tests/gpu/cuda_op_check
if [ "$gpus" -lt 1 ]; then
  row "kernels against the CPU" skipped "no GPU visible (nvidia-smi -L)"
elif [ ! -x "$op_check" ]; then
  row "kernels against the CPU" FAIL "missing $op_check: build the target cuda_op_check"
else
  out=$(ours timeout 300 "$op_check" 2>&1); rc=$?
  while IFS=$'\t' read -r name status detail; do
    [ -n "$detail" ] && row "kernel $name" "$status" "$detail"
  done <<<"$out"
  [ $rc = 0 ] || [ $rc = 1 ] || row "kernels against the CPU" FAIL "cuda_op_check exited $rc: $(echo "$out" | tail -1)"
fi

# 50 steps of the tiny nano3 pretraining (`-c tiny`, its prepared data) with train.device = "cuda"
# against the same 50 steps on the CPU: the loss of every step within 3% (bf16 activations).
nemokit=$build/bin/nemokit
data_dir=${NEMOKIT_DATA_DIR:-$HOME/.cache/nemokit/data}
corpus_dir=${NEMOKIT_CORPUS_DIR:-$HOME/.cache/nemokit/corpus}
if [ "$gpus" -lt 1 ]; then
  row "tiny pretraining, 50 steps" skipped "no GPU visible (nvidia-smi -L)"
elif [ ! -x "$nemokit" ]; then
  row "tiny pretraining, 50 steps" FAIL "missing $nemokit: build the targets nemokit stage_pretrain"
elif [ ! -d "$data_dir/nano3-pretrain-tiny" ] && [ ! -d "$corpus_dir" ]; then
  row "tiny pretraining, 50 steps" skipped "no prepared data in $data_dir and no corpus in $corpus_dir (scripts/setup.sh)"
else
  detail=""
  for dev in cpu cuda; do
    out=$(NEMOKIT_DATA_DIR=$data_dir NEMOKIT_CORPUS_DIR=$corpus_dir NEMOKIT_JOB_ROOT=$work/jobs-$dev NEMOKIT_ARTIFACTS_ROOT=$work/store \
      NEMOKIT_CHECKPOINT_DIR=$work/ckpt-$dev ours timeout 300 "$nemokit" run nano3 pretrain -c tiny train.max_steps=50 \
      train.log_interval=1 train.eval_interval=0 train.save_interval=0 +train.device=$dev 2>&1) ||
      detail="$dev run failed: $(echo "$out" | tail -1)"
  done
  if [ -z "$detail" ]; then
    detail=$(python3 - "$work/jobs-cpu" "$work/jobs-cuda" <<'PY'
import glob, json, sys
def losses(root):
    lines = [json.loads(l) for f in glob.glob(root + "/*/metrics.jsonl") for l in open(f)]
    return {l["step"]: l["loss"] for l in lines if "loss" in l}
cpu, gpu = losses(sys.argv[1]), losses(sys.argv[2])
if len(cpu) < 50 or sorted(cpu) != sorted(gpu):
    print(f"FAIL steps logged: cpu {len(cpu)}, cuda {len(gpu)}"); sys.exit()
worst = max(abs(gpu[s] - cpu[s]) / abs(cpu[s]) for s in cpu)
last = max(cpu)
print(("ok" if worst <= 0.03 else "FAIL") + f" worst step {100 * worst:.2f}% apart; step 1 {cpu[min(cpu)]:.3f}/{gpu[min(cpu)]:.3f},"
      f" step {last} {cpu[last]:.3f}/{gpu[last]:.3f} (cpu/cuda)")
PY
)
    row "tiny pretraining, 50 steps" "${detail%% *}" "${detail#* }"
  else
    row "tiny pretraining, 50 steps" FAIL "$detail"
  fi
fi

# Throughput and MFU against transformers' NemotronH in bf16 on the same GPU, weights, tokens,
# batch and sequence length (bench_train_gpu.py): a ~1B dense hybrid and an MoE. Goals: MFU of
# at least 45% on the dense config and 3x transformers' tokens/s; under them the row says "short".
train_bench=$build/bench/gpu/gpu_train_bench
# The benchmark program through a wrapper with our library path (the Python peer starts it).
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' "$ours_ld" "$train_bench" >"$work/gpu_train_bench"
chmod +x "$work/gpu_train_bench"
for cfg in dense-1b moe; do
  if [ "$gpus" -lt 1 ]; then
    row "train bench $cfg" skipped "no GPU visible (nvidia-smi -L)"
  elif [ ! -x "$train_bench" ]; then
    row "train bench $cfg" FAIL "missing $train_bench: build the target gpu_train_bench"
  elif ! python3 -c "import torch, transformers" 2>/dev/null; then
    row "train bench $cfg" skipped "python3 lacks torch or transformers (the peer)"
  elif out=$(timeout 420 python3 "$here/bench_train_gpu.py" --bench "$work/gpu_train_bench" --config "$cfg" --json "$work/$cfg.json" 2>&1); then
    detail=$(python3 - "$work/$cfg.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
short = r["ratio"] < 3 or (r["config"] == "dense-1b" and r["nemokit_mfu"] < 0.45)
print(("short" if short else "ok") + f" {r['nemokit_tokens_per_s']:.0f} tok/s MFU {100 * r['nemokit_mfu']:.1f}%;"
      f" transformers {r['transformers_tokens_per_s']:.0f} tok/s MFU {100 * r['transformers_mfu']:.1f}%;"
      f" {r['ratio']:.2f}x (B {r['batch']} x T {r['seq']})")
PY
)
    row "train bench $cfg" "${detail%% *}" "${detail#* }"
  else
    row "train bench $cfg" FAIL "$(echo "$out" | tail -1)"
  fi
done

printf '%-34s %-8s %s\n' check status detail
for r in "${rows[@]}"; do echo "$r"; done
exit $failed
