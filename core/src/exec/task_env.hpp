#pragma once

#include <string>

namespace nemokit {

// Who this process is in a distributed job.
struct TaskIdentity {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr, master_port;
};

// Inside a Slurm step (SLURM_PROCID set) and unless RANK is already set: exports RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and NODE_RANK from SLURM_PROCID, SLURM_LOCALID,
// SLURM_NTASKS, SLURM_NTASKS_PER_NODE and SLURM_NODEID (MASTER_ADDR and MASTER_PORT come from
// the batch script). Returns what the environment then says (rank 0 of 1 when nothing does).
TaskIdentity adopt_task_identity();

// How many GPUs this task sees: the entries of CUDA_VISIBLE_DEVICES when set, else the lines of
// `nvidia-smi -L` when that runs, else 0.
int visible_gpu_count();

}  // namespace nemokit
