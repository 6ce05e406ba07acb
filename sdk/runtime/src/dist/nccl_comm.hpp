// The NCCL backend of Communicator lives in the CUDA module (src/cuda/nccl/nccl_comm.cu);
// cuda_module.cpp opens it there, so this library never links CUDA or NCCL.
#pragma once
#include <memory>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/dist.hpp"

namespace nemokit::rt {

// NCCL over every rank of the job, this process on GPU self.local_rank modulo the visible
// devices, rank 0's unique id shared through self's MASTER_ADDR/MASTER_PORT rendezvous. Throws
// std::runtime_error "device cuda requested but no CUDA device / NCCL module could not be
// loaded: <why>" when the module or its entry is missing or NCCL cannot start here.
std::unique_ptr<Communicator> open_nccl_communicator(const RankInfo& self, const CommOptions& options);

}  // namespace nemokit::rt
