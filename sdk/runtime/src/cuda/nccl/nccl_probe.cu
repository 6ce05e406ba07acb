// The NCCL all-reduce figure of `nemokit probe`: every rank takes one GPU, rank 0's NCCL unique
// id reaches the others through the TCP rendezvous, and the all-reduce is timed with CUDA
// events after warm-up. Bandwidths follow nccl-tests: algbw = bytes / time, busbw = algbw *
// 2 (n - 1) / n, the figure that compares across rank counts.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "nemokit/runtime/dist.hpp"

namespace nemokit::rt {
namespace {

// Each check returns the failing call's message to the caller as the probe's line.
#define NEMOKIT_CUDA_OR_RETURN(call)                                                          \
  do {                                                                                        \
    cudaError_t e_ = (call);                                                                  \
    if (e_ != cudaSuccess) return std::string("nccl probe: " #call ": ") + cudaGetErrorString(e_); \
  } while (0)
#define NEMOKIT_NCCL_OR_RETURN(call)                                                          \
  do {                                                                                        \
    ncclResult_t e_ = (call);                                                                 \
    if (e_ != ncclSuccess) return std::string("nccl probe: " #call ": ") + ncclGetErrorString(e_); \
  } while (0)

struct Resources {
  float* buffer = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  ncclComm_t comm = nullptr;
  ~Resources() {
    if (comm) ncclCommDestroy(comm);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
    if (buffer) cudaFree(buffer);
  }
};

std::string human_bytes(size_t b) {
  char s[32];
  if (b >= (1u << 30)) std::snprintf(s, sizeof s, "%.0f GiB", double(b) / (1u << 30));
  else if (b >= (1u << 20)) std::snprintf(s, sizeof s, "%.0f MiB", double(b) / (1u << 20));
  else std::snprintf(s, sizeof s, "%zu bytes", b);
  return s;
}

}  // namespace

std::string allreduce_probe(const RankInfo& self, size_t bytes) {
  int devices = 0;
  NEMOKIT_CUDA_OR_RETURN(cudaGetDeviceCount(&devices));
  if (devices == 0) return "nccl probe: no CUDA device visible";
  NEMOKIT_CUDA_OR_RETURN(cudaSetDevice(self.local_rank % devices));

  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (self.rank == 0) NEMOKIT_NCCL_OR_RETURN(ncclGetUniqueId(&id));
  std::string shared = broadcast_from_rank0(self, std::string(reinterpret_cast<const char*>(&id), sizeof id),
                                            std::chrono::minutes(2));
  if (shared.size() != sizeof id) return "nccl probe: rank 0 sent an id of " + std::to_string(shared.size()) + " bytes";
  std::memcpy(&id, shared.data(), sizeof id);

  Resources res;
  const size_t count = bytes / sizeof(float);
  NEMOKIT_NCCL_OR_RETURN(ncclCommInitRank(&res.comm, self.world_size, id, self.rank));
  NEMOKIT_CUDA_OR_RETURN(cudaMalloc(&res.buffer, count * sizeof(float)));
  NEMOKIT_CUDA_OR_RETURN(cudaMemset(res.buffer, 0, count * sizeof(float)));
  NEMOKIT_CUDA_OR_RETURN(cudaStreamCreateWithFlags(&res.stream, cudaStreamNonBlocking));
  NEMOKIT_CUDA_OR_RETURN(cudaEventCreate(&res.start));
  NEMOKIT_CUDA_OR_RETURN(cudaEventCreate(&res.stop));

  constexpr int kWarmup = 5, kIters = 20;
  for (int i = 0; i < kWarmup; ++i)
    NEMOKIT_NCCL_OR_RETURN(ncclAllReduce(res.buffer, res.buffer, count, ncclFloat, ncclSum, res.comm, res.stream));
  NEMOKIT_CUDA_OR_RETURN(cudaStreamSynchronize(res.stream));
  NEMOKIT_CUDA_OR_RETURN(cudaEventRecord(res.start, res.stream));
  for (int i = 0; i < kIters; ++i)
    NEMOKIT_NCCL_OR_RETURN(ncclAllReduce(res.buffer, res.buffer, count, ncclFloat, ncclSum, res.comm, res.stream));
  NEMOKIT_CUDA_OR_RETURN(cudaEventRecord(res.stop, res.stream));
  NEMOKIT_CUDA_OR_RETURN(cudaEventSynchronize(res.stop));
  float ms = 0;
  NEMOKIT_CUDA_OR_RETURN(cudaEventElapsedTime(&ms, res.start, res.stop));

  const double seconds = double(ms) / 1e3 / kIters;
  const double algbw = double(count * sizeof(float)) / seconds / 1e9;
  const double busbw = algbw * 2.0 * (self.world_size - 1) / self.world_size;
  char line[200];
  std::snprintf(line, sizeof line, "nccl all-reduce %s over %d rank%s: %.2f ms, algbw %.1f GB/s, busbw %.1f GB/s",
                human_bytes(count * sizeof(float)).c_str(), self.world_size, self.world_size == 1 ? "" : "s",
                seconds * 1e3, algbw, busbw);
  return line;
}

}  // namespace nemokit::rt

// The module's entry point, opened by name from src/dist/cuda_module.cpp.
extern "C" __attribute__((visibility("default"))) void nemokit_rt_cuda_nccl_allreduce_probe(
    const nemokit::rt::RankInfo* self, size_t bytes, std::string* line) {
  try {
    *line = nemokit::rt::allreduce_probe(*self, bytes);
  } catch (const std::exception& e) {
    *line = std::string("nccl probe: ") + e.what();
  }
}
