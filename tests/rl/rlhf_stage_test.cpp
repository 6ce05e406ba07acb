// `nemokit run super3 rl rlhf` as a user runs it: the tasks scripts/setup.sh makes from
// Debian's packages, a small model from `nemokit model init` with a tokenizer trained on them;
// the stage trains a reward model on pairs from the tasks, reports its held-out pair accuracy,
// saves it, then runs GRPO steps scored by it. A second run reuses the saved reward model.
#include "run_cli.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include "support/setup_data.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

fs::path tasks_dir() { return nemokit::test::setup_data_dir("NEMOKIT_RL_TASKS_DIR", "rl-tasks"); }

std::vector<json> metrics_of(const fs::path& jobs) {
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(jobs)) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  std::vector<json> out;
  std::ifstream in(all.back() / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

TEST(RlhfStage, TrainsARewardModelThenRunsGrpoAgainstIt) {
  const fs::path base = nemokit::test::temp_folder("rlhf-stage");
  ASSERT_TRUE(fs::exists(tasks_dir() / "capitals.jsonl")) << "run scripts/setup.sh: it writes " << tasks_dir();
  // Every 5th of the first 300 lines of each task file.
  std::string files, inputs;
  for (const char* name : {"arithmetic", "unscramble", "capitals"}) {
    const fs::path to = base / (std::string(name) + ".jsonl");
    std::ifstream in(tasks_dir() / (std::string(name) + ".jsonl"));
    std::ofstream out(to);
    std::string line;
    for (int i = 0; i < 300 && std::getline(in, line); ++i)
      if (i % 5 == 0) out << line << "\n";
    files += " '" + to.string() + "'";
    inputs += "\"" + to.string() + "\", ";
  }
  auto tok = run_cli("tokenizer train --vocab-size 400 --out '" + (base / "tokenizer.json").string() +
                     "' --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' --special '<think>'"
                     " --special '</think>'" + files);
  ASSERT_EQ(tok.rc, 0) << tok.err;
  json cfg = {{"hybrid_override_pattern", "M*-"}, {"hidden_size", 32}, {"vocab_size", 400}, {"mamba_num_heads", 4},
              {"mamba_head_dim", 16}, {"ssm_state_size", 8}, {"n_groups", 2}, {"conv_kernel", 4}, {"chunk_size", 16},
              {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 8}, {"intermediate_size", 64},
              {"tie_word_embeddings", true}};
  std::ofstream(base / "model-config.json") << cfg.dump();
  const fs::path model = base / "sft-model";
  auto init = run_cli("model init --config '" + (base / "model-config.json").string() + "' --out '" + model.string() + "' --seed 5");
  ASSERT_EQ(init.rc, 0) << init.err;
  fs::copy_file(base / "tokenizer.json", model / "tokenizer.json");

  const fs::path conf = base / "rlhf.toml";
  std::ofstream(conf) << "defaults = [\"tiny\"]\n[model]\ninit_from = \"" << model.string() << "\"\n"
                      << "[data]\ninputs = [" << inputs << "]\nsplit = \"70,15,15\"\noutput = \"" << (base / "data").string() << "\"\n"
                      << "[reward_model]\nsteps = 12\nbatch_pairs = 8\neval_interval = 6\n"
                      << "[grpo]\nnum_prompts_per_step = 2\nnum_generations_per_prompt = 3\nmax_new_tokens = 4\n"
                      << "[train]\nmax_steps = 2\neval_interval = 2\nsave_interval = 2\nmicro_batch_size = 6\nlog_interval = 1\n"
                      << "[eval]\nmax_tasks = 4\nmax_new_tokens = 4\n"
                      << "[checkpoint]\ndir = \"" << (base / "ckpt").string() << "\"\n";
  const std::string env = "NEMOKIT_JOB_ROOT='" + (base / "jobs").string() + "' NEMOKIT_NUM_THREADS=2";
  auto r = run_cli("run super3 rl rlhf -c '" + conf.string() + "'", env);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("held-out (test split) pair accuracy"), std::string::npos) << r.out << r.err;

  const std::vector<json> m = metrics_of(base / "jobs");
  // reward model: step 0 (val), steps 1..12 (val at 6 and 12), test; GRPO: val at 0, steps 1-2, val at 2
  ASSERT_EQ(m.size(), 1u + 12u + 1u + 4u);
  EXPECT_EQ(m[0]["phase"], "reward_model");
  EXPECT_GT(m[0]["val"]["pairs"].get<int64_t>(), 20);
  EXPECT_TRUE(m[6].contains("val") && m[12].contains("val") && !m[7].contains("val"));
  EXPECT_GT(m[1]["loss"].get<double>(), 0.0);
  const json& test = m[13]["test"];
  EXPECT_GT(test["pairs"].get<int64_t>(), 20);
  EXPECT_GE(test["accuracy"].get<double>(), 0.0);
  EXPECT_LE(test["accuracy"].get<double>(), 1.0);
  for (const char* k : {"arithmetic", "unscramble", "capitals"}) EXPECT_TRUE(test["by_kind"].contains(k)) << test.dump();
  EXPECT_EQ(m[14]["step"], 0);
  EXPECT_TRUE(m[14].contains("val_reward"));
  const json& s1 = m[15];
  EXPECT_EQ(s1["step"], 1);
  for (const char* k : {"reward_mean", "reward_std", "entropy", "clip_fraction", "response_length", "loss"})
    EXPECT_TRUE(s1.contains(k)) << k;
  // The rewards are the reward model's scores: real-valued, with spread inside groups.
  EXPECT_LT(s1["flat_groups"].get<double>(), 1.0) << s1.dump();
  const fs::path rm = base / "ckpt" / "reward_model";
  EXPECT_NE(read_file(rm / "config.json").find("NemotronHForSequenceClassification"), std::string::npos);
  EXPECT_TRUE(fs::exists(base / "ckpt" / "step_0000002" / "model.safetensors"));

  // Again, two steps further: the saved reward model is used, not retrained; GRPO resumes.
  auto again = run_cli("run super3 rl rlhf -c '" + conf.string() + "' train.max_steps=3", env);
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE((again.out + again.err).find("not retrained"), std::string::npos) << again.out << again.err;
  EXPECT_NE((again.out + again.err).find("resumed from"), std::string::npos) << again.err;

  // A bad key of the new table is named.
  auto typo = run_cli("run super3 rl rlhf -c '" + conf.string() + "' reward_model.stepz=3", env);
  EXPECT_NE(typo.rc, 0);
  EXPECT_NE(typo.err.find("reward_model.stepz"), std::string::npos) << typo.err;
}

}  // namespace
