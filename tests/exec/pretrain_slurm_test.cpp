// Data parallel on the throwaway Slurm (slurm_cluster.hpp): `nemokit run nano3 pretrain --run
// PROFILE` with two tasks on one node, started by srun --mpi=pmix (the profile's mpi key) so the
// tasks form one MPI world, trains exactly as the same job's two local ranks under mpirun: the
// same losses at every step and the same weights after 10 steps.
#include "data_parallel_config.hpp"
#include "run_cli.hpp"
#include "slurm_cluster.hpp"
#include "support/files.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <vector>

namespace nemokit {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace test;

namespace {

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new SlurmCluster);

const char* kProfiles = R"([two]
executor = "slurm"
container = "none"
partition = "batch"
nodes = 1
ntasks_per_node = 2
mpi = "pmix"
env_vars = {NEMOKIT_NUM_THREADS = "1", NEMOKIT_COMM_TIMEOUT_S = "120"}
)";

}  // namespace

TEST(exec_slurm_pretrain, two_tasks_under_srun_train_as_two_local_ranks) {
  SKIP_WITHOUT_SLURM();
  const fs::path base = temp_folder("slurm-pretrain-dp");
  const fs::path cfg = write_data_parallel_config(base);
  std::ofstream(base / "env.toml") << kProfiles;
  const std::string env = "-u NEMOKIT_PLUGIN_PATH NEMOKIT_ENV='" + (base / "env.toml").string() + "' ";
  // Data prep first, here, so that both runs train on the same prepared folder.
  CliResult prep = run_cli("data prep nano3 pretrain -c " + cfg.string(), env + "NEMOKIT_JOB_ROOT='" + (base / "jobs-prep").string() + "'");
  ASSERT_EQ(prep.rc, 0) << prep.out << prep.err;

  CliResult local = run_cli("run nano3 pretrain -c " + cfg.string() + " checkpoint.dir=" + (base / "ckpt-local").string() +
                                " +run.nproc_per_node=2",
                            env + "NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=120 NEMOKIT_JOB_ROOT='" + (base / "jobs-local").string() + "'");
  ASSERT_EQ(local.rc, 0) << local.out << local.err;
  CliResult slurm = run_cli("run nano3 pretrain -c " + cfg.string() + " --run two checkpoint.dir=" + (base / "ckpt-slurm").string(),
                            env + "NEMOKIT_JOB_ROOT='" + (base / "jobs-slurm").string() + "'", base.string());
  ASSERT_EQ(slurm.rc, 0) << slurm.out << slurm.err;
  const std::string all = slurm.out + slurm.err;
  EXPECT_NE(all.find("over 2 data-parallel ranks (mpi)"), std::string::npos) << all;
  const fs::path job = fs::directory_iterator(base / "jobs-slurm")->path();
  const std::string script = read_file(job / "sbatch.sh");
  EXPECT_NE(script.find("--mpi=pmix"), std::string::npos) << script;

  const auto want = train_losses(base / "jobs-local"), got = train_losses(base / "jobs-slurm");
  ASSERT_EQ(want.size(), 10u);
  ASSERT_EQ(got.size(), 10u) << "metrics.jsonl must hold each step once";
  for (const auto& [step, loss] : want) EXPECT_EQ(got.at(step), loss) << "step " << step;
  auto a = rt::SafetensorsFile::open((base / "ckpt-local" / "step_0000010" / "model.safetensors").string());
  auto b = rt::SafetensorsFile::open((base / "ckpt-slurm" / "step_0000010" / "model.safetensors").string());
  for (const auto& e : a.entries()) {
    rt::Tensor x = a.load_f32(e.name), y = b.load_f32(e.name);
    ASSERT_EQ(x.numel(), y.numel()) << e.name;
    EXPECT_EQ(std::vector<float>(x.f32(), x.f32() + x.numel()), std::vector<float>(y.f32(), y.f32() + y.numel())) << e.name;
  }
}

}  // namespace nemokit
