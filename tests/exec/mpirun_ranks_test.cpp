// Several local ranks started through Open MPI's mpirun (how `nemokit run` starts them, so that
// they form one MPI world): each rank's lines come back prefixed "[R] " and land in its own
// rank-R.log, and a failing rank ends the job with its code.
#include "exec/local_ranks.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "support/files.hpp"

namespace nemokit {
namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `script` on two ranks under mpirun with stdout captured into a file; returns the code.
int run_two(const fs::path& dir, const std::string& script, std::string& out) {
  LocalRanks spec;
  spec.exe = "/bin/sh";
  spec.args = {"-c", script};
  spec.nproc = 2;
  spec.log_dir = dir / "logs";
  spec.mpirun = mpi_launcher();
  fs::path captured = dir / "stdout.txt";
  int saved = ::dup(1);
  int fd = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::close(fd);
  int rc = run_local_ranks(spec);
  ::dup2(saved, 1);
  ::close(saved);
  out = read_all(captured);
  return rc;
}

}  // namespace

TEST(MpirunRanks, EachRanksLinesArePrefixedAndLoggedApart) {
  if (mpi_launcher().empty()) GTEST_FAIL() << "mpirun is not on PATH: install openmpi-bin (scripts/setup-deps.sh)";
  fs::path dir = fs::temp_directory_path() / ("nemokit-mpirun-ranks-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string out;
  int rc = run_two(dir, "echo \"rank $RANK/$WORLD_SIZE via $OMPI_COMM_WORLD_RANK\"; echo second line from $OMPI_COMM_WORLD_RANK", out);
  ASSERT_EQ(rc, 0) << out;
  // RANK is not set by the executor under mpirun (the rank adopts OMPI_COMM_WORLD_RANK itself).
  EXPECT_NE(out.find("[0] rank /2 via 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[1] rank /2 via 1\n"), std::string::npos) << out;
  EXPECT_EQ(read_all(dir / "logs" / "rank-0.log"), "rank /2 via 0\nsecond line from 0\n");
  EXPECT_EQ(read_all(dir / "logs" / "rank-1.log"), "rank /2 via 1\nsecond line from 1\n");
  fs::remove_all(dir);
}

TEST(MpirunRanks, AFailingRankEndsTheJobWithAFailure) {
  if (mpi_launcher().empty()) GTEST_FAIL() << "mpirun is not on PATH: install openmpi-bin (scripts/setup-deps.sh)";
  fs::path dir = fs::temp_directory_path() / ("nemokit-mpirun-fail-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string out;
  auto t0 = std::chrono::steady_clock::now();
  int rc = run_two(dir, "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exit 3; fi; sleep 30", out);
  EXPECT_NE(rc, 0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20) << "rank 0 was not ended";
  fs::remove_all(dir);
}

}  // namespace nemokit
