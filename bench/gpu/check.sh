#!/usr/bin/env bash
# Every GPU check of nemokit in one go, for a machine with GPUs (issue 16): prints one table,
# one row per check, and exits non-zero when a check failed. Checks that need more GPUs than the
# machine has are listed as "skipped" with the reason, never left out unseen.
#
#   bench/gpu/check.sh [BUILD_DIR]      (default: build)
#
# Build first: cmake --build BUILD_DIR --target nemokit_runtime_cuda comm_rank_program cuda_op_check runtime_device_tensor_test
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

# ranks BACKEND N MODE ARGS...: N ranks of comm_rank_program under mpirun (the launcher only:
# the NCCL backend reads Open MPI's rank variables and meets over MASTER_ADDR/MASTER_PORT).
ranks() {
  local backend=$1 n=$2
  shift 2
  NEMOKIT_COMM_BACKEND=$backend NEMOKIT_COMM_TIMEOUT_S=${NEMOKIT_COMM_TIMEOUT_S:-60} WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port) \
    timeout 120 mpirun -n "$n" --oversubscribe --bind-to none \
    -x NEMOKIT_COMM_BACKEND -x NEMOKIT_COMM_TIMEOUT_S -x WORLD_SIZE -x MASTER_ADDR -x MASTER_PORT \
    "$rank_program" "$@"
}

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
elif out=$("$tensor_test" --gtest_filter='*OnTheGpu*' 2>&1) && echo "$out" | grep -q '\[  PASSED  \] 1 test'; then
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
  out=$(timeout 300 "$op_check" 2>&1); rc=$?
  while IFS=$'\t' read -r name status detail; do
    [ -n "$detail" ] && row "kernel $name" "$status" "$detail"
  done <<<"$out"
  [ $rc = 0 ] || [ $rc = 1 ] || row "kernels against the CPU" FAIL "cuda_op_check exited $rc: $(echo "$out" | tail -1)"
fi

printf '%-34s %-8s %s\n' check status detail
for r in "${rows[@]}"; do echo "$r"; done
exit $failed
