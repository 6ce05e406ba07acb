// `nemokit pipe omni3 -c tiny --run PROFILE` on the throwaway Slurm (slurm_cluster.hpp) with the
// real stage plugins (the build's own plugin folder): four jobs, omni3 sft -> rl mpo -> rl text ->
// rl vision, each submitted with --dependency=afterok on the one before and started from the
// model the one before published to the artifact store (model.init_from = "NAME:latest", resolved
// when the job starts); then the same pipe with the MPO stage failing for a real reason (its
// tasks file is missing), which stops the chain there. A tiny model made by `nemokit model init`
// and small subsets of the omni chats and vision tasks, as in tests/rl/omni_rl_test.cpp.
#include "omni_chats.hpp"
#include "run_cli.hpp"
#include "slurm_cluster.hpp"
#include "tiny_chat_model.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

namespace nemokit {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace test;

namespace {

const auto* const kCluster = ::testing::AddGlobalTestEnvironment(new SlurmCluster);

// One CPU task per job; NEMOKIT_NUM_THREADS reaches the job through the profile's env_vars (the
// paths below are used where nemokit submits: the configs' ${env:...} are resolved there).
const char* kProfiles = R"([t]
executor = "slurm"
container = "none"
partition = "batch"
nodes = 1
ntasks_per_node = 1
env_vars = {NEMOKIT_NUM_THREADS = "2"}
)";

const char* kPipe = "pipe omni3 -c tiny --run t train.max_steps=2 train.eval_interval=2 train.save_interval=2";
const char* kStages[] = {"omni3 sft", "omni3 rl mpo", "omni3 rl text", "omni3 rl vision"};
const char* kCheckpoints[] = {"omni3-sft-tiny", "omni3-rl-mpo-tiny", "omni3-rl-text-tiny", "omni3-rl-vision-tiny"};
const char* kModels[] = {"omni3-sft-model", "omni3-rl-mpo-model", "omni3-rl-text-model", "omni3-rl-vision-model"};

// A folder with env.toml, the chats (with rl-vision.jsonl, MPO's and vision's tasks, or without
// it) and the tiny model the tiny omni3 SFT starts from (CHECKPOINTS/nano3-sft-tiny).
void prepare(const fs::path& base, bool with_rl_tasks) {
  const fs::path chats = base / "chats", from = omni_chats_dir();
  ASSERT_TRUE(fs::exists(from / "rl-vision.jsonl")) << "run scripts/setup.sh: it writes " << from;
  fs::create_directories(chats);
  take_omni_chats(from / "train.jsonl", chats, "train.jsonl", 20);
  take_omni_chats(from / "val.jsonl", chats, "val.jsonl", 2);
  take_omni_chats(from / "eval.jsonl", chats, "eval.jsonl", 2);
  if (with_rl_tasks) take_omni_chats(from / "rl-vision.jsonl", chats, "rl-vision.jsonl", 30);
  make_tiny_chat_model(base, {chats / "train.jsonl"}, tiny_chat_model_config(600), 3, base / "ckpt" / "nano3-sft-tiny");
  std::ofstream(base / "env.toml") << kProfiles;
}

// The build's plugins (no NEMOKIT_PLUGIN_PATH), the profiles, and the folders the tiny configs
// and the job root read; sbatch hands this environment on to the jobs.
std::string env_of(const fs::path& base) {
  return "-u NEMOKIT_PLUGIN_PATH NEMOKIT_ARTIFACTS_ROOT='" + (base / "store").string() + "' NEMOKIT_ENV='" +
         (base / "env.toml").string() + "' NEMOKIT_JOB_ROOT='" +
         (base / "jobs").string() + "' NEMOKIT_DATA_DIR='" + (base / "data").string() + "' NEMOKIT_CHECKPOINT_DIR='" +
         (base / "ckpt").string() + "' NEMOKIT_OMNI_CHATS_DIR='" + (base / "chats").string() + "'";
}

struct Submitted {
  std::string id, stage;
  fs::path job;
};

// "nemokit: submitted Slurm job ID (STAGE), job folder PATH", in the order submitted.
std::vector<Submitted> submitted(const std::string& err) {
  std::vector<Submitted> out;
  std::regex re("submitted Slurm job (\\d+) \\(([^)]*)\\), job folder (\\S+)");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back({(*it)[1], (*it)[2], fs::path((*it)[3].str())});
  return out;
}

json job_json(const fs::path& job) { return json::parse(read_file(job / "job.json")); }

// Each job after the first waits for the one before (afterok) and starts from the model it
// publishes, which its job.json pins to that job.
void expect_chained(const std::vector<Submitted>& jobs) {
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].stage, kStages[i]);
    const json j = job_json(jobs[i].job);
    EXPECT_EQ(j["slurm_job_id"], jobs[i].id);
    const std::string script = read_file(jobs[i].job / "sbatch.sh");
    EXPECT_NE(script.find("export NEMOKIT_NUM_THREADS='2'"), std::string::npos) << script;
    if (i == 0) {
      EXPECT_FALSE(j.contains("after")) << j.dump();
      EXPECT_FALSE(j.contains("pipe_inputs")) << j.dump();
      continue;
    }
    EXPECT_EQ(j.value("after", ""), jobs[i - 1].id) << jobs[i].stage;
    EXPECT_EQ(j["pipe_inputs"].value(kModels[i - 1], ""), jobs[i - 1].job.string()) << j.dump();
    EXPECT_NE(read_file(jobs[i].job / "config.toml").find("init_from = \"" + std::string(kModels[i - 1]) + ":latest\""),
              std::string::npos)
        << jobs[i].stage;
  }
}

}  // namespace

TEST(exec_slurm_omni, pipe_runs_sft_mpo_text_and_vision_as_four_jobs_chained_with_afterok) {
  SKIP_WITHOUT_SLURM();
  const fs::path base = temp_folder("slurm-omni-pipe");
  prepare(base, true);
  ASSERT_FALSE(HasFatalFailure());
  CliResult r = run_cli(kPipe, env_of(base), base.string());
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("# pipe omni3: omni3 sft -> omni3 rl mpo -> omni3 rl text -> omni3 rl vision\n"), std::string::npos)
      << r.out;
  const std::vector<Submitted> jobs = submitted(r.err);
  ASSERT_EQ(jobs.size(), 4u) << r.err;
  expect_chained(jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const json j = job_json(jobs[i].job);
    EXPECT_EQ(j["state"], "COMPLETED") << jobs[i].stage << " " << j.dump();
    EXPECT_EQ(j["exit_code"], 0) << jobs[i].stage;
    EXPECT_EQ(wait_state(jobs[i].id, "", 10), "COMPLETED") << jobs[i].stage;
    const fs::path step = base / "ckpt" / kCheckpoints[i] / "step_0000002";
    ASSERT_TRUE(fs::exists(step / "config.json")) << step << "\n" << r.err;
    EXPECT_TRUE(json::parse(read_file(step / "config.json")).contains("vision_config")) << kCheckpoints[i];
  }
  // Each RL stage started from the model the job before it published (its logs, streamed by
  // --run), resolved in the store when it started.
  const std::string all = r.out + r.err;
  EXPECT_NE(all.find("MPO from " + (base / "ckpt" / "omni3-sft-tiny" / "step_0000002").string()), std::string::npos) << all;
  EXPECT_NE(all.find("GRPO from " + (base / "ckpt" / "omni3-rl-mpo-tiny" / "step_0000002").string()), std::string::npos) << all;
  EXPECT_NE(all.find("GRPO from " + (base / "ckpt" / "omni3-rl-text-tiny" / "step_0000002").string()), std::string::npos) << all;
  for (size_t i = 1; i < 4; ++i)
    EXPECT_NE(all.find("artifact model.init_from = \"" + std::string(kModels[i - 1]) + ":latest\" -> " + kModels[i - 1] + ":v1: " +
                       (base / "ckpt" / kCheckpoints[i - 1] / "step_0000002").string()),
              std::string::npos)
        << all;
  // The last model's lineage reaches back through every stage to the chats.
  CliResult lineage = run_cli("artifacts lineage omni3-rl-vision-model", env_of(base), base.string());
  ASSERT_EQ(lineage.rc, 0) << lineage.err;
  for (const char* m : kModels) EXPECT_NE(lineage.out.find(std::string(m) + ":v1"), std::string::npos) << lineage.out;
  fs::remove_all(base);
}

TEST(exec_slurm_omni, a_failed_mpo_job_stops_the_chain_and_names_its_log) {
  SKIP_WITHOUT_SLURM();
  // The chats without rl-vision.jsonl: SFT (train, val and eval chats) runs, MPO's data prep
  // finds no tasks file.
  const fs::path base = temp_folder("slurm-omni-pipe-fail");
  prepare(base, false);
  ASSERT_FALSE(HasFatalFailure());
  CliResult r = run_cli(kPipe, env_of(base), base.string());
  EXPECT_EQ(r.rc, 1) << r.out << r.err;
  const std::vector<Submitted> jobs = submitted(r.err);
  ASSERT_EQ(jobs.size(), 4u) << r.err;
  expect_chained(jobs);
  // SFT finished, MPO failed with the reason in its log, which the pipe names.
  EXPECT_EQ(job_json(jobs[0].job)["state"], "COMPLETED");
  EXPECT_TRUE(fs::exists(base / "ckpt" / "omni3-sft-tiny" / "step_0000002" / "config.json"));
  const json mpo = job_json(jobs[1].job);
  EXPECT_EQ(mpo["state"], "FAILED") << mpo.dump();
  EXPECT_EQ(mpo["exit_code"], 1) << mpo.dump();
  const fs::path mpo_err = jobs[1].job / "logs" / ("slurm-" + jobs[1].id + ".err");
  const std::string reason = "data.inputs: cannot open " + (base / "chats" / "rl-vision.jsonl").string();
  EXPECT_NE(read_file(mpo_err).find("nemokit run omni3 rl mpo: " + reason), std::string::npos) << read_file(mpo_err);
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;  // streamed by --run
  EXPECT_NE(r.err.find("pipe omni3 stopped at omni3 rl mpo (Slurm job " + jobs[1].id + ", FAILED, exit code 1); its logs: " +
                       mpo_err.string()),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(base / "ckpt" / "omni3-rl-mpo-tiny" / "step_0000002"));
  // Text and vision never started: cancelled, no log, no checkpoint.
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(wait_state(jobs[i].id, "", 10), "CANCELLED") << jobs[i].stage;
    EXPECT_EQ(job_json(jobs[i].job)["state"], "CANCELLED") << jobs[i].stage;
    EXPECT_FALSE(fs::exists(jobs[i].job / "logs" / ("slurm-" + jobs[i].id + ".out"))) << jobs[i].stage;
    EXPECT_NE(r.err.find(std::string(kStages[i]) + " (Slurm job " + jobs[i].id + ") not run: CANCELLED"), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(base / "ckpt" / kCheckpoints[i])) << kCheckpoints[i];
  }
  fs::remove_all(base);
}

}  // namespace nemokit
