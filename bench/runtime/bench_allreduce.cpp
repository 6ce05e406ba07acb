// all_reduce_sum of the runtime's Communicator, timed per message size; data_parallel.sh runs it
// under mpirun beside allreduce_peer.c (Open MPI's MPI_Allreduce called directly) on the same
// sizes. Prints one line per size from rank 0: bytes, time per call, algbw and busbw in GB/s
// (nccl-tests' convention: busbw = algbw x 2(n-1)/n).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "nemokit/runtime/comm.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ITERS BYTES... (under mpirun)\n", argv[0]);
    return 2;
  }
  auto comm = nemokit::rt::open_communicator();
  const int iters = std::stoi(argv[1]);
  for (int a = 2; a < argc; ++a) {
    const size_t bytes = std::stoul(argv[a]);
    std::vector<float> buf(bytes / sizeof(float), 1.0f);
    for (int i = 0; i < 3; ++i) comm->all_reduce_sum(buf.data(), buf.size());
    comm->barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) comm->all_reduce_sum(buf.data(), buf.size());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
    double algbw = double(bytes) / secs / 1e9;
    if (comm->rank() == 0)
      std::printf("%zu %.2f %.4f %.4f\n", bytes, secs * 1e6, algbw, algbw * 2.0 * (comm->size() - 1) / comm->size());
  }
  return 0;
}
