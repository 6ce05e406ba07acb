// The ranks of a job talking to each other: the rendezvous that hands every rank the same bytes
// from rank 0 (how NCCL's unique id travels), and the NCCL all-reduce probe `nemokit probe`
// prints for a profile with GPUs.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace nemokit::rt {

// Who this process is in the job, as RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT
// say (the executors set them for every task).
struct RankInfo {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
};

// Rank 0 listens on master_port and sends `blob` to each of the other world_size - 1 ranks;
// they connect to master_addr:master_port (retrying while rank 0 is not listening yet) and
// receive it. Every rank returns rank 0's blob (the argument is ignored on other ranks).
// Throws std::runtime_error naming the address and the cause, also when `timeout` passes.
std::string broadcast_from_rank0(const RankInfo& self, const std::string& blob, std::chrono::milliseconds timeout);

// Why NCCL cannot be used here ("this nemokit was built without CUDA (...)", "cannot load the
// CUDA path: ..."), or "" when the CUDA module with its NCCL entry loads.
std::string nccl_unavailable();

// An NCCL all-reduce (sum, float32) of `bytes` over all ranks, one GPU per rank (device
// LOCAL_RANK modulo the visible devices), timed after warm-up as nccl-tests does. Every rank
// must call it. Returns the figure, e.g. "nccl all-reduce 256 MiB over 8 ranks: 2.10 ms,
// algbw 127.8 GB/s, busbw 223.7 GB/s", or one line saying why it did not run.
std::string nccl_allreduce_probe(const RankInfo& self, size_t bytes);

}  // namespace nemokit::rt
