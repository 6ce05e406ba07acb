// The rendezvous that carries NCCL's unique id, over real sockets between real processes on
// loopback; and the NCCL probe's answer on this machine (a figure with a GPU, a cause without).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "nemokit/runtime/dist.hpp"
#include "support/files.hpp"

namespace rt = nemokit::rt;
using namespace std::chrono_literals;

namespace {

// A port nobody listens on right now: the kernel picks one for a socket we then close.
int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(s);
  return ntohs(a.sin_port);
}

// 128 bytes with zeros inside, like an ncclUniqueId.
std::string id_like_blob() {
  std::string b(128, '\0');
  for (size_t i = 0; i < b.size(); i += 3) b[i] = char(i * 7 + 1);
  return b;
}

}  // namespace

TEST(Rendezvous, EveryRankGetsRankZerosBytesEvenWhenItStartsFirst) {
  const int world = 4, port = free_port();
  const std::string blob = id_like_blob();
  std::vector<pid_t> children;
  for (int r = 1; r < world; ++r) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // a rank: exit 0 only with exactly rank 0's bytes
      try {
        std::string got = rt::broadcast_from_rank0({r, world, r, "127.0.0.1", port}, "ignored", 10s);
        ::_exit(got == blob ? 0 : 3);
      } catch (...) {
        ::_exit(4);
      }
    }
    children.push_back(pid);
  }
  std::this_thread::sleep_for(300ms);  // the others are already retrying
  EXPECT_EQ(rt::broadcast_from_rank0({0, world, 0, "127.0.0.1", port}, blob, 10s), blob);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank exit status " << status;
  }
}

TEST(Rendezvous, ARankWithoutRankZeroTimesOutNamingTheAddress) {
  const int port = free_port();
  auto t0 = std::chrono::steady_clock::now();
  try {
    rt::broadcast_from_rank0({1, 2, 1, "127.0.0.1", port}, "", 300ms);
    FAIL() << "no rank 0 listens, yet the rendezvous returned";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("rendezvous 127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
    EXPECT_NE(what.find("timed out waiting for rank 0"), std::string::npos) << what;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(Rendezvous, RankZeroSaysHowManyRanksNeverCame) {
  try {
    rt::broadcast_from_rank0({0, 3, 0, "127.0.0.1", free_port()}, "x", 300ms);
    FAIL() << "two ranks never connected, yet the rendezvous returned";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0 of 2 ranks connected"), std::string::npos) << e.what();
  }
}

TEST(Rendezvous, OneRankNeedsNoNetworkAndBadPortsAreRefused) {
  EXPECT_EQ(rt::broadcast_from_rank0({0, 1, 0, "nowhere.invalid", 0}, "alone", 1s), "alone");
  EXPECT_THROW(rt::broadcast_from_rank0({1, 2, 1, "127.0.0.1", 0}, "", 1s), std::runtime_error);
  EXPECT_THROW(rt::broadcast_from_rank0({2, 2, 0, "127.0.0.1", 29500}, "", 1s), std::runtime_error);
}

// One rank, one GPU: a figure where the machine has a GPU and a CUDA build, else a line that
// starts "nccl probe:" and says why.
TEST(NcclProbe, GivesAFigureOrSaysWhyNot) {
  std::string line = rt::nccl_allreduce_probe({0, 1, 0, "127.0.0.1", 0}, size_t(8) << 20);
  bool gpu = ::access("/dev/nvidia0", F_OK) == 0 && ::access("/dev/nvidiactl", F_OK) == 0;
  if (gpu && rt::nccl_unavailable().empty()) {
    EXPECT_EQ(line.rfind("nccl all-reduce 8 MiB over 1 rank: ", 0), 0u) << line;
    EXPECT_NE(line.find("busbw 0.0 GB/s"), std::string::npos) << line;  // one rank moves nothing
  } else {
    EXPECT_EQ(line.rfind("nccl probe: ", 0), 0u) << line;
    EXPECT_GT(line.size(), std::string("nccl probe: ").size() + 10) << line;
  }
}

// The CUDA path is a module opened on first use: a process that links the runtime (as nemokit
// does) maps no CUDA library until it asks for one.
TEST(NcclProbe, TheRuntimeMapsNoCudaLibraryUntilAsked) {
  const std::string all = nemokit::test::read_file("/proc/self/maps");
  EXPECT_NE(all.find("libnemokit_runtime.so"), std::string::npos);
  for (const char* lib : {"libcudart", "libcublas", "libnccl", "libnemokit_runtime_cuda"})
    EXPECT_EQ(all.find(lib), std::string::npos) << lib << " is mapped at start";
}
