#!/usr/bin/env bash
# How long an attached run of a tiny job takes end to end (submit, follow, exit code back):
# `nemokit probe --run` (polls squeue every 0.5 s and streams the log) against the peer
# `sbatch --wait` on the same one-task srun job, on the throwaway cluster of tests/slurm.
#
#   bench/exec/follow_latency.sh BUILD_DIR [RUNS]     (root; Debian's slurm-wlm)
set -euo pipefail
build=$(realpath "${1:?usage: $0 BUILD_DIR [RUNS]}")
runs=${2:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/nemokit-follow-bench.XXXXXX)
trap '"$src/tests/slurm/cluster.sh" stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

eval "$("$src/tests/slurm/cluster.sh" start "$work/cluster")"
cat > "$work/env.toml" <<EOT
[t]
executor = "slurm"
container = "none"
nodes = 1
ntasks_per_node = 1
EOT
cat > "$work/peer.sh" <<EOT
#!/bin/bash
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=$work/peer-%j.out
srun hostname
EOT
export NEMOKIT_ENV=$work/env.toml NEMOKIT_JOB_ROOT=$work/jobs
cd "$work"
# The first job after slurmctld starts waits for the first scheduling pass: warm up once.
sbatch --wait "$work/peer.sh" >/dev/null

now() { date +%s.%N; }
ours=0; peer=0
for i in $(seq 1 "$runs"); do
  t0=$(now); "$build/bin/nemokit" probe --run t >/dev/null 2>&1; t1=$(now)
  sbatch --wait "$work/peer.sh" >/dev/null; t2=$(now)
  ours=$(awk -v a="$ours" -v b="$t0" -v c="$t1" 'BEGIN { print a + c - b }')
  peer=$(awk -v a="$peer" -v b="$t1" -v c="$t2" 'BEGIN { print a + c - b }')
done
awk -v o="$ours" -v p="$peer" -v n="$runs" 'BEGIN {
  printf "attached tiny job, mean of %d: nemokit probe --run %.2f s, sbatch --wait %.2f s\n", n, o / n, p / n
  printf "ratio (sbatch --wait / nemokit): %.2fx\n", p / o }'
