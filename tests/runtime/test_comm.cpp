// The communicator with real processes: two ranks under Open MPI's mpirun (as the local executor
// starts them) run every collective, and a rank that stops or dies ends the job within the
// collective timeout with that rank named, instead of hanging the others.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>

#include "nemokit/runtime/comm.hpp"
#include "support/process.hpp"

namespace {

using nemokit::test::RunResult;

RunResult run_ranks(int n, const std::string& mode, double timeout_s, double seconds = 120) {
  nemokit::test::RunOptions opt;
  opt.env = {{"OMPI_ALLOW_RUN_AS_ROOT", "1"}, {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
             {"OMPI_MCA_btl_vader_single_copy_mechanism", "none"}, {"WORLD_SIZE", std::to_string(n)},
             {"NEMOKIT_COMM_TIMEOUT_S", std::to_string(timeout_s)}};
  return nemokit::test::run({"mpirun", "-n", std::to_string(n), "--oversubscribe", "--bind-to", "none", COMM_RANK_PROGRAM, mode},
                            opt, seconds);
}

TEST(runtime_comm, SingleRankCollectivesAreCopies) {
  auto c = nemokit::rt::single_rank_communicator();
  float x[2] = {1.5f, 2.5f}, y[2] = {0, 0};
  c->all_reduce_sum(x, 2);
  EXPECT_EQ(x[0], 1.5f);
  c->all_gather(x, y, 2);
  EXPECT_EQ(y[1], 2.5f);
  size_t counts[1] = {3};
  char s[3] = {'a', 'b', 'c'}, r[3] = {};
  c->all_to_all(s, counts, r, counts);
  EXPECT_EQ(std::string(r, 3), "abc");
  EXPECT_THROW(c->broadcast(s, 1, 1), std::invalid_argument);
}

TEST(runtime_comm, SeveralRanksWithoutAnMpiLauncherAreRefusedSayingHowToStartThem) {
  ::setenv("WORLD_SIZE", "2", 1);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("PMIX_RANK");
  ::unsetenv("PMI_RANK");
  try {
    nemokit::rt::open_communicator();
    FAIL() << "expected a refusal";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("mpirun"), std::string::npos) << e.what();
  }
  ::unsetenv("WORLD_SIZE");
}

TEST(runtime_comm, TwoRanksRunEveryCollective) {
  RunResult r = run_ranks(2, "collectives", 30);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("rank 0 of 2 ok (mpi)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rank 1 of 2 ok (mpi)"), std::string::npos) << r.out;
}

TEST(runtime_comm, AStoppedRankEndsTheJobWithinTheTimeoutNamingIt) {
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run_ranks(2, "stall", 2, 60);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.exit_code, -2) << "the job hung: " << r.out << r.err;
  EXPECT_LT(secs, 30);
  EXPECT_NE(r.err.find("timed out after 2 s on rank 0 of 2: rank 1 never arrived"), std::string::npos) << r.err;
  // Rank 0 gave up; rank 1 may pass once mpirun wakes it (SIGCONT) to end it.
  EXPECT_EQ(r.out.find("rank 0 passed the barrier"), std::string::npos) << r.out;
}

// The other ranks wait for rank 0 working alone (preparing data, writing a checkpoint) past the
// collective timeout through wait_for_ranks; a plain barrier still ends at the timeout.
TEST(runtime_comm, RanksWaitForRankZerosLongWorkButNotInAPlainBarrier) {
  RunResult r = run_ranks(2, "rank0-works", 1, 60);
  EXPECT_NE(r.out.find("rank 0 waited for rank 0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("rank 1 waited for rank 0"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("timed out after 1 s on rank 1 of 2: rank 0 never arrived"), std::string::npos) << r.err;
}

TEST(runtime_comm, AKilledRankEndsTheJobNamingIt) {
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run_ranks(2, "die", 5, 60);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.exit_code, -2) << "the job hung: " << r.out << r.err;
  EXPECT_LT(secs, 30);
  // Either mpirun saw the death first ("process rank 1 ... exited on signal 9") or rank 0's
  // collective timed out first ("rank 1 never arrived"): both name rank 1.
  std::string all = r.out + r.err;
  EXPECT_TRUE(all.find("rank 1 with PID") != std::string::npos || all.find("rank 1 never arrived") != std::string::npos) << all;
}

}  // namespace
