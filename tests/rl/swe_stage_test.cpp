// `nemokit data prep super3 rl -c swe1` and `nemokit run super3 rl swe1|swe2` as a user runs them:
// the tasks scripts/setup.sh makes (plugins/stage_rl/corpus/make_swe_tasks.sh), a small model made
// by `nemokit model init` with a tokenizer trained on the tasks, a few GRPO steps whose rewards
// come from running the tests in the sandbox (root; skipped otherwise).
#include "run_cli.hpp"
#include "tiny_chat_model.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include "support/setup_data.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

fs::path tasks_dir() { return nemokit::test::setup_data_dir("NEMOKIT_RL_TASKS_DIR", "rl-tasks"); }

// Every `every`-th line of `from`, up to `lines` of them (spread over the bug families).
void sample_lines(const fs::path& from, const fs::path& to, int lines, int every) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0, n = 0; n < lines && std::getline(in, line); ++i)
    if (i % every == 0) out << line << "\n", ++n;
}

std::vector<json> metrics_of(const fs::path& jobs) {
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(jobs)) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  std::vector<json> out;
  if (all.empty()) return out;
  std::ifstream in(all.back() / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

class SweStage : public ::testing::Test {
 protected:
  static inline fs::path base, model;

  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    base = nemokit::test::temp_folder("swe-stage");
    ASSERT_TRUE(fs::exists(tasks_dir() / "swe1.jsonl")) << "run scripts/setup.sh: it writes " << tasks_dir();
    for (const char* f : {"swe1", "swe2"}) sample_lines(tasks_dir() / (std::string(f) + ".jsonl"), base / (std::string(f) + ".jsonl"), 40, 15);
    model = base / "sft-model";
    nemokit::test::make_tiny_chat_model(base, {base / "swe1.jsonl", base / "swe2.jsonl"},
                                        nemokit::test::tiny_chat_model_config(500), 5, model);
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the code_execution sandbox needs root (namespaces, mounts)";
  }

  // A config over the shipped tiny one of the sub-stage: this folder's model and tasks, 2 steps.
  fs::path config(const std::string& name, const std::string& substage, const std::string& extra = "") {
    fs::path dir = base / name;
    fs::create_directories(dir);
    fs::path cfg = dir / "rl.toml";
    std::ofstream(cfg) << "defaults = [\"tiny\"]\n[model]\ninit_from = \"" << model.string() << "\"\n"
                       << "[data]\ninputs = [\"" << (base / (substage + ".jsonl")).string() << "\"]\nsplit = \"80,10,10\"\n"
                       << "output = \"" << (dir / "data").string() << "\"\n"
                       << "[grpo]\nnum_prompts_per_step = 2\nnum_generations_per_prompt = 2\nmax_new_tokens = 24\n"
                       << "[train]\nmax_steps = 2\neval_interval = 2\nsave_interval = 2\nmicro_batch_size = 4\nlog_interval = 1\n"
                       << "[eval]\nmax_tasks = 3\nmax_new_tokens = 24\n"
                       << "[checkpoint]\ndir = \"" << (dir / "ckpt").string() << "\"\n"
                       << "[environments.code_execution]\nuid_base = 3300000000\n" << extra;
    return cfg;
  }
  std::string env(const std::string& name) {
    return "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_NUM_THREADS=2";
  }
};

TEST_F(SweStage, DataPrepSplitsTheRepositoriesWithAManifest) {
  fs::path cfg = config("prep", "swe1");
  auto r = run_cli("data prep super3 rl swe1 -c '" + cfg.string() + "'", env("prep"));
  ASSERT_EQ(r.rc, 0) << r.err;
  json meta = json::parse(read_file(base / "prep" / "data" / "metadata.json"));
  EXPECT_EQ(meta["type"], "SplitJsonlDataArtifact");
  int64_t total = 0;
  for (const char* s : {"train", "val", "test"}) total += meta["splits"][s]["records"].get<int64_t>();
  EXPECT_EQ(total, 40);
  EXPECT_EQ(meta["splits"]["train"]["environments"], json({{"code_execution", meta["splits"]["train"]["records"]}}));
  json manifest = json::parse(read_file(base / "prep" / "data" / "manifest.json"));
  std::ifstream in(manifest["train"].get<std::string>());
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  json task = json::parse(line);
  for (const char* k : {"files", "test_command", "protected", "expected_answer"}) EXPECT_TRUE(task.contains(k)) << k;
}

TEST_F(SweStage, Swe1StepsScorePatchesInTheSandboxAndWriteMetrics) {
  fs::path cfg = config("swe1", "swe1");
  auto r = run_cli("run super3 rl swe1 -c '" + cfg.string() + "'", env("swe1"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  auto m = metrics_of(base / "swe1" / "jobs");
  ASSERT_EQ(m.size(), 4u);  // evaluation at 0, steps 1 and 2, evaluation at 2
  EXPECT_TRUE(m[0]["val_reward"].contains("swe1")) << m[0].dump();
  for (size_t i : {size_t(1), size_t(2)}) {
    EXPECT_EQ(m[i]["step"], int(i));
    EXPECT_GE(m[i]["reward_mean"].get<double>(), 0.0);
    EXPECT_LE(m[i]["reward_mean"].get<double>(), 1.0);
    EXPECT_GT(m[i]["response_length"].get<double>(), 0.0);
    EXPECT_FALSE(m[i].contains("tool_calls"));  // one turn: no tools
  }
  ASSERT_TRUE(m[3].contains("samples"));
  for (const json& s : m[3]["samples"]) EXPECT_FALSE(s["reason"].get<std::string>().empty()) << s.dump();
  EXPECT_TRUE(fs::exists(base / "swe1" / "ckpt" / "step_0000002" / "model.safetensors"));
}

TEST_F(SweStage, Swe2RunsMultiTurnEpisodesAndWritesToolMetrics) {
  fs::path cfg = config("swe2", "swe2", "[tool_use]\nmax_turns = 2\nmax_output_chars = 256\n");
  auto r = run_cli("run super3 rl swe2 -c '" + cfg.string() + "'", env("swe2"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("multi-turn rollouts: up to 2 model turns"), std::string::npos) << r.err;
  auto m = metrics_of(base / "swe2" / "jobs");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_TRUE(m[0]["val_reward"].contains("swe2")) << m[0].dump();
  for (size_t i : {size_t(1), size_t(2)}) {
    EXPECT_GE(m[i]["turns"].get<double>(), 1.0) << m[i].dump();
    EXPECT_LE(m[i]["turns"].get<double>(), 2.0);
    EXPECT_GE(m[i]["tool_calls"].get<double>(), 0.0);
    EXPECT_LE(m[i]["reward_mean"].get<double>(), 1.0);
  }
  // Two ranks with the routed experts split between them: their episodes end after different
  // turns, yet every turn's generation steps both ranks together; the same rollouts, rewards
  // and losses as one rank.
  auto ep = run_cli("run super3 rl swe2 -c '" + cfg.string() + "' +run.nproc_per_node=2 +parallel.ep=2 checkpoint.dir='" +
                        (base / "swe2-ep" / "ckpt").string() + "'",
                    env("swe2-ep") + " NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
  ASSERT_EQ(ep.rc, 0) << ep.out << ep.err;
  auto m2 = metrics_of(base / "swe2-ep" / "jobs");
  ASSERT_EQ(m2.size(), m.size());
  for (size_t i : {size_t(1), size_t(2)}) {
    for (const char* k : {"reward_mean", "turns", "tool_calls", "response_length"}) EXPECT_EQ(m[i][k], m2[i][k]) << k << " step " << i;
    EXPECT_NEAR(m[i]["loss"].get<double>(), m2[i]["loss"].get<double>(), 1e-6) << "step " << i;
  }
  // A typo in [tool_use] stops the run before any work, naming the key.
  auto bad = run_cli("run super3 rl swe2 -c '" + cfg.string() + "' tool_use.max_turn=3", env("swe2-bad"));
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("tool_use.max_turn"), std::string::npos) << bad.err;
}

}  // namespace
