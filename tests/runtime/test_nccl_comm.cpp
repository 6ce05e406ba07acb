// The NCCL backend as a job selects it (parallel.backend = "nccl"): on a machine without a GPU
// (or a build without CUDA) opening it fails at once with the reason, never a loader error or
// a hang; with one GPU it is a working one-rank communicator. The two-rank comparison against
// the MPI backend runs on a GPU machine, in bench/gpu/check.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/dist.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"

namespace rt = nemokit::rt;

namespace {

bool have_gpu() { return ::access("/dev/nvidia0", F_OK) == 0 && ::access("/dev/nvidiactl", F_OK) == 0; }

}  // namespace

TEST(NcclComm, ConfigSelectsTheBackendAndRefusesOtherWords) {
  EXPECT_EQ(rt::read_comm_backend(nlohmann::json::object()), rt::CommBackend::automatic);
  EXPECT_EQ(rt::read_comm_backend({{"parallel", {{"backend", "mpi"}}}}), rt::CommBackend::mpi);
  EXPECT_EQ(rt::read_comm_backend({{"parallel", {{"backend", "nccl"}}}}), rt::CommBackend::nccl);
  // read_parallel_table accepts the key it does not use itself.
  EXPECT_NO_THROW(rt::read_parallel_table({{"parallel", {{"backend", "nccl"}}}}, 1));
  try {
    rt::read_comm_backend({{"parallel", {{"backend", "gloo"}}}});
    FAIL() << "gloo was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.backend: 'gloo'"), std::string::npos) << e.what();
  }
}

// One rank: without a GPU the error says a CUDA device was asked for and why it cannot be had;
// with one, the collectives of one rank leave the data as it is.
TEST(NcclComm, OneRankOpensOnAGpuOrSaysWhyNot) {
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  rt::CommOptions options;
  options.backend = rt::CommBackend::nccl;
  options.timeout = std::chrono::seconds(20);
  if (have_gpu() && rt::nccl_unavailable().empty()) {
    auto comm = rt::open_communicator(options);
    ASSERT_EQ(comm->backend(), "nccl");
    EXPECT_EQ(comm->size(), 1);
    std::vector<float> v = {1.5f, -2.0f, 3.25f};
    comm->all_reduce_sum(v.data(), v.size());
    EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
    comm->barrier();
    return;
  }
  try {
    rt::open_communicator(options);
    FAIL() << "the NCCL backend opened on a machine without a GPU";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    const std::string prefix = "device cuda requested but no CUDA device / NCCL module could not be loaded: ";
    EXPECT_EQ(what.rfind(prefix, 0), 0u) << what;
    EXPECT_GT(what.size(), prefix.size() + 10) << "the reason is missing: " << what;
  }
}
