// The throwaway Slurm the Slurm tests share: tests/slurm/cluster.sh's two-node cluster under
// BUILD/tests/exec/slurm-cluster, started once for the whole suite by the ctest fixture
// exec_slurm_cluster (tests/exec/CMakeLists.txt), or by the test binary itself when it runs alone.
// A test binary registers the environment once:
//   const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new nemokit::test::SlurmCluster);
// and every test starts with SKIP_WITHOUT_SLURM().
#pragma once

#include "exec/process.hpp"
#include "exec/slurm_client.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace nemokit::test {

// Why the Slurm tests skip; empty when the cluster is up.
inline std::string skip_reason;

class SlurmCluster : public ::testing::Environment {
 public:
  void SetUp() override {
    namespace fs = std::filesystem;
    if (!on_path("slurmctld") || !on_path("slurmd") || !on_path("sbatch")) {
      skip_reason = "slurm-wlm is not installed (slurmctld, slurmd or sbatch not found): Slurm tests skipped";
      return;
    }
    if (geteuid() != 0) {
      skip_reason = "not root (tests/slurm/cluster.sh runs the Slurm daemons as root): Slurm tests skipped";
      return;
    }
    base_ = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "exec" / "slurm-cluster";
    setenv("SLURM_CONF", (base_ / "etc" / "slurm.conf").c_str(), 1);
    if (fs::exists(base_ / "etc" / "slurm.conf")) {
      CommandResult ping = run_command({"scontrol", "ping"});
      if (ping.exit_code == 0 && ping.out.find("UP") != std::string::npos) return;  // the ctest fixture's
    }
    CommandResult r = run_command({script(), "start", base_.string()});
    if (r.exit_code != 0) {
      skip_reason.clear();
      FAIL() << "cluster.sh start failed:\n" << r.err;
    }
    owned_ = true;
  }
  void TearDown() override {
    if (owned_) run_command({script(), "stop", base_.string()});
  }

 private:
  static std::string script() { return std::string(NEMOKIT_SOURCE_DIR) + "/tests/slurm/cluster.sh"; }
  std::filesystem::path base_;
  bool owned_ = false;
};

// Waits until Slurm reports `want` for the job (or a final state when want is "").
inline std::string wait_state(const std::string& id, const std::string& want, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  SlurmJobState st;
  while (std::chrono::steady_clock::now() < end) {
    st = slurm_job_state(id);
    if (want.empty() ? st.ended() : st.state == want) return st.state;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return st.state;
}

}  // namespace nemokit::test

#define SKIP_WITHOUT_SLURM() \
  if (!::nemokit::test::skip_reason.empty()) GTEST_SKIP() << ::nemokit::test::skip_reason
