// `nemokit eval FAMILY` and `nemokit model eval A B` as a user runs them: two tiny models made by
// `nemokit model init` (a tokenizer trained on the texts), pretraining data prepared with their
// tokenizer, the RL tasks and SFT chats scripts/setup.sh makes; omni3 on a model the omni3 SFT
// stage gave encoders to. Every suite runs on a few items, in seconds.
#include "bible_slice.hpp"
#include "omni_chats.hpp"
#include "run_cli.hpp"
#include "tiny_chat_model.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::read_file;
using nemokit::test::run_cli;

namespace {

const char* const kTaskFiles[] = {"arithmetic", "unscramble", "definitions", "capitals"};

void head(const fs::path& from, const fs::path& to, int lines, int every) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0, n = 0; n < lines && std::getline(in, line); ++i)
    if (i % every == 0) out << line << "\n", ++n;
}

std::string toml_list(const std::vector<fs::path>& paths) {
  std::string s = "[";
  for (const auto& p : paths) s += "\"" + p.string() + "\", ";
  return s + "]";
}

fs::path only_job(const fs::path& root) {
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(root)) jobs.push_back(e.path());
  std::sort(jobs.begin(), jobs.end());
  return jobs.empty() ? fs::path() : jobs.back();
}

json metrics_of(const fs::path& job) {
  json j = json::parse(read_file(job / "eval.json"));
  json out = json::array();
  for (const auto& m : j["models"]) out.push_back(m["metrics"]);
  return out;
}

class EvalStage : public ::testing::Test {
 protected:
  static inline fs::path base, model_a, model_b, data, tasks, chats;

  static void SetUpTestSuite() {
    base = nemokit::test::temp_folder("eval-stage");
    tasks = base / "tasks";
    fs::create_directories(tasks);
    const fs::path rl = nemokit::test::setup_data_dir("NEMOKIT_RL_TASKS_DIR", "rl-tasks");
    chats = nemokit::test::setup_data_dir("NEMOKIT_SFT_CHATS_DIR", "sft-chats") / "eval.jsonl";
    ASSERT_TRUE(fs::exists(rl / "arithmetic.jsonl")) << "run scripts/setup.sh: it writes " << rl;
    ASSERT_TRUE(fs::exists(chats)) << "run scripts/setup.sh: it writes " << chats;
    ASSERT_TRUE(fs::exists(nemokit::test::kjv_bible())) << "run scripts/setup.sh: it writes " << nemokit::test::kjv_bible();
    std::vector<fs::path> texts;
    for (const char* f : kTaskFiles) {
      head(rl / (std::string(f) + ".jsonl"), tasks / (std::string(f) + ".jsonl"), 40, 9);
      texts.push_back(tasks / (std::string(f) + ".jsonl"));
    }
    head(nemokit::test::kjv_bible(), base / "bible.txt", 1500, 1);
    texts.push_back(base / "bible.txt");
    model_a = base / "model-a";
    nemokit::test::make_tiny_chat_model(base, texts, nemokit::test::tiny_chat_model_config(500), 5, model_a);
    if (::testing::Test::HasFatalFailure()) return;
    model_b = base / "model-b";
    auto init = run_cli("model init --config '" + (base / "model-config.json").string() + "' --out '" + model_b.string() + "' --seed 9");
    ASSERT_EQ(init.rc, 0) << init.err;
    fs::copy_file(base / "tokenizer.json", model_b / "tokenizer.json");
    // Pretraining data tokenized with the models' tokenizer: its test split is the held-out text.
    data = base / "pretrain-data";
    std::ofstream(base / "prep.toml") << "[data]\ninputs = [\"" << (base / "bible.txt").string() << "\"]\n"
                                      << "tokenizer = \"" << (base / "tokenizer.json").string() << "\"\n"
                                      << "seq_length = 32\nsplit = \"80,10,10\"\noutput = \"" << data.string() << "\"\n";
    auto prep = run_cli("data prep nano3 pretrain -c '" + (base / "prep.toml").string() + "'", env("prep"));
    ASSERT_EQ(prep.rc, 0) << prep.err;
  }

  static std::string env(const std::string& name) {
    return "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_ARTIFACTS_ROOT='" + (base / "artifacts").string() +
           "' NEMOKIT_NUM_THREADS=2";
  }

  // The shipped tiny config with this folder's models, data, tasks and chats, a few items each.
  static fs::path config(const std::string& name, const std::string& extra = "") {
    fs::create_directories(base / name);
    const fs::path cfg = base / name / "eval.toml";
    std::vector<fs::path> task_files;
    for (const char* f : kTaskFiles) task_files.push_back(tasks / (std::string(f) + ".jsonl"));
    std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                       << "[model]\ncheckpoints = " << toml_list({model_a, model_b}) << "\n"
                       << "[perplexity]\ndata = \"" << data.string() << "\"\nmicro_batch_size = 4\nmax_windows = 12\n"
                       << "[tasks]\nmax_per_kind = 3\nmax_new_tokens = 6\n"
                       << "[tasks.data]\ninputs = " << toml_list(task_files) << "\nsplit = \"50,25,25\"\n"
                       << "[chats]\nfile = \"" << chats.string() << "\"\nmax_examples = 6\nmax_new_tokens = 6\n"
                       << extra;
    return cfg;
  }
};

TEST_F(EvalStage, EverySuiteOnTwoModelsRepeatsExactlyAndIsPublished) {
  const fs::path cfg = config("twice");
  auto first = run_cli("eval nano3 -c '" + cfg.string() + "'", env("twice"));
  ASSERT_EQ(first.rc, 0) << first.out << first.err;
  // the table: a column per model, a row per metric
  for (const char* s : {"eval-stage/model-a", "eval-stage/model-b", "perplexity, test split (384 tokens)", "loss, nats per token",
                        "tasks: mean reward", "arithmetic (3 tasks)", "chats: exact match (6 items)"})
    EXPECT_NE(first.out.find(s), std::string::npos) << s << "\n" << first.out;
  const fs::path job1 = only_job(base / "twice" / "jobs");
  const json m1 = metrics_of(job1);
  ASSERT_EQ(m1.size(), 2u);
  const double loss = m1[0]["perplexity/test/loss"]["value"], ppl = m1[0]["perplexity/test"]["value"];
  EXPECT_NEAR(ppl, std::exp(loss), 1e-9 * ppl);
  EXPECT_NEAR(loss, std::log(500.0), 1.0);  // an untrained model: about uniform over its 500 ids
  EXPECT_EQ(m1[0]["perplexity/test"]["count"], 12 * 32);
  EXPECT_NE(m1[0]["perplexity/test/loss"]["value"], m1[1]["perplexity/test/loss"]["value"]);  // two models, two numbers
  EXPECT_EQ(m1[0]["tasks/all"]["count"], 12);  // 3 tasks of each of the 4 kinds
  EXPECT_EQ(m1[0]["chats/all"]["count"], 6);

  // The same numbers again, to the last bit.
  fs::remove_all(base / "twice" / "jobs");
  auto second = run_cli("eval nano3 -c '" + cfg.string() + "'", env("twice"));
  ASSERT_EQ(second.rc, 0) << second.err;
  EXPECT_EQ(metrics_of(only_job(base / "twice" / "jobs")), m1);

  // Both runs published their results, naming the models and the data they measured on.
  const fs::path store = base / "artifacts" / "nano3-eval-results";
  ASSERT_TRUE(fs::exists(store / "v2" / "metadata.json")) << first.err;
  const json meta = json::parse(read_file(store / "v2" / "metadata.json"));
  EXPECT_EQ(meta["type"], "EvalResultsArtifact");
  EXPECT_EQ(meta["models"].size(), 2u);
  std::string used;
  for (const auto& u : meta["tracking"]["used_artifacts"]) used += u["name"].get<std::string>() + " ";
  EXPECT_NE(used.find("model-a"), std::string::npos) << used;
  EXPECT_NE(used.find("model-b"), std::string::npos) << used;
  EXPECT_NE(used.find("pretrain-data"), std::string::npos) << used;
}

TEST_F(EvalStage, ModelEvalNamesTheModelsOnTheCommandLine) {
  const fs::path cfg = config("model-eval");
  auto r = run_cli("model eval '" + model_b.string() + "' '" + model_a.string() + "' -c '" + cfg.string() +
                       "' tasks.max_per_kind=1 chats.max_examples=2",
                   env("model-eval"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const json m = json::parse(read_file(only_job(base / "model-eval" / "jobs") / "eval.json"));
  ASSERT_EQ(m["models"].size(), 2u);
  EXPECT_EQ(m["models"][0]["path"], model_b.string());  // in the order given
  EXPECT_EQ(m["models"][1]["metrics"]["tasks/all"]["count"], 4);
  const size_t b = r.out.find("eval-stage/model-b"), a = r.out.find("eval-stage/model-a");
  EXPECT_TRUE(b != std::string::npos && a != std::string::npos && b < a) << r.out;

  // The recipes' shape, and --dry-run: the models in the resolved config and the plan.
  auto dry = run_cli("nano3 model eval '" + model_a.string() + "' -c '" + cfg.string() + "' --dry-run", env("model-eval"));
  ASSERT_EQ(dry.rc, 0) << dry.err;
  EXPECT_NE(dry.out.find("# nemokit run nano3 eval (plugin stage_eval"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("checkpoints = [ \"" + model_a.string() + "\" ]"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("nemokit __task"), std::string::npos) << dry.out;
}

TEST_F(EvalStage, MissingModelsDataAndMismatchedTokenizersNameThePath) {
  const fs::path cfg = config("bad");
  auto missing = run_cli("model eval '" + (base / "no-such-model").string() + "' -c '" + cfg.string() + "'", env("bad"));
  EXPECT_NE(missing.rc, 0);
  EXPECT_NE(missing.err.find("model.checkpoints[0]: " + (base / "no-such-model").string() + " does not exist"), std::string::npos)
      << missing.err;

  auto no_data = run_cli("eval nano3 -c '" + cfg.string() + "' perplexity.data='" + (base / "no-data").string() + "'", env("bad"));
  EXPECT_NE(no_data.rc, 0);
  EXPECT_NE(no_data.err.find("perplexity.data: " + (base / "no-data").string() + " does not exist"), std::string::npos) << no_data.err;

  auto no_tasks = run_cli("eval nano3 -c '" + cfg.string() + "' tasks.data.inputs='[\"" + (base / "none.jsonl").string() + "\"]'", env("bad"));
  EXPECT_NE(no_tasks.rc, 0);
  EXPECT_NE(no_tasks.err.find((base / "none.jsonl").string()), std::string::npos) << no_tasks.err;

  // A model whose tokenizer is another one than the data's: the error names both files.
  const fs::path other = base / "other-model";
  auto tok = run_cli("tokenizer train --vocab-size 300 --out '" + (base / "other-tokenizer.json").string() + "' '" +
                     (tasks / "arithmetic.jsonl").string() + "'");
  ASSERT_EQ(tok.rc, 0) << tok.err;
  auto init = run_cli("model init --config '" + (base / "model-config.json").string() + "' --out '" + other.string() + "'");
  ASSERT_EQ(init.rc, 0) << init.err;
  fs::copy_file(base / "other-tokenizer.json", other / "tokenizer.json");
  auto mismatch = run_cli("model eval '" + other.string() + "' -c '" + cfg.string() + "'", env("bad"));
  EXPECT_NE(mismatch.rc, 0);
  EXPECT_NE(mismatch.err.find("tokenizer mismatch"), std::string::npos) << mismatch.err;
  EXPECT_NE(mismatch.err.find((base / "tokenizer.json").string()), std::string::npos) << mismatch.err;
  EXPECT_NE(mismatch.err.find((other / "tokenizer.json").string()), std::string::npos) << mismatch.err;
}

// omni3: a model the omni3 SFT stage gave encoders to (one step), beside the text model it came
// from: image, audio and video items through the encoders; the text model has none of them.
TEST_F(EvalStage, Omni3MeasuresImagesAndAudioThroughTheEncoders) {
  const fs::path dir = base / "omni";
  fs::create_directories(dir);
  const fs::path omni_chats = nemokit::test::omni_chats_dir();
  ASSERT_TRUE(fs::exists(omni_chats / "eval.jsonl")) << "run scripts/setup.sh: it writes " << omni_chats;
  nemokit::test::take_omni_chats(omni_chats / "train.jsonl", dir, "train.jsonl", 2);
  nemokit::test::take_omni_chats(omni_chats / "eval.jsonl", dir, "eval.jsonl", 2);
  nemokit::test::take_omni_chats(omni_chats / "rl-vision.jsonl", dir, "rl-vision.jsonl", 4);
  std::ofstream(dir / "sft.toml") << "defaults = [\"tiny\"]\n[model]\ninit_from = \"" << model_a.string() << "\"\n"
                                  << "[data]\ninputs = [\"" << (dir / "train.jsonl").string() << "\"]\nvalidation = []\n"
                                  << "pack_size = 256\noutput = \"" << (dir / "data").string() << "\"\n"
                                  << "[train]\nmicro_batch_size = 2\nglobal_batch_size = 2\nmax_steps = 1\nwarmup_steps = 0\n"
                                  << "eval_interval = 0\neval_steps = 0\nsave_interval = 1\n"
                                  << "[eval]\nfile = \"\"\n[checkpoint]\ndir = \"" << (dir / "ckpt").string() << "\"\n";
  auto sft = run_cli("run omni3 sft -c '" + (dir / "sft.toml").string() + "'", env("omni"));
  ASSERT_EQ(sft.rc, 0) << sft.err;

  std::ofstream(dir / "eval.toml") << "defaults = [\"tiny\"]\n"
                                   << "[model]\ncheckpoints = " << toml_list({dir / "ckpt", model_a}) << "\n"
                                   << "[perplexity]\ndata = \"" << data.string() << "\"\nmax_windows = 4\n"
                                   << "[tasks]\nuse = [\"train\", \"val\", \"test\"]\nmax_new_tokens = 4\n"
                                   << "[tasks.data]\ninputs = [\"" << (dir / "rl-vision.jsonl").string() << "\"]\n"
                                   << "[chats]\nfile = \"" << (dir / "eval.jsonl").string() << "\"\nmax_new_tokens = 4\n";
  auto r = run_cli("eval omni3 -c '" + (dir / "eval.toml").string() + "'", env("omni-eval"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const json m = metrics_of(only_job(base / "omni-eval" / "jobs"));
  ASSERT_EQ(m.size(), 2u);
  for (const char* kind : {"chats/fashion", "chats/digits", "chats/speech", "chats/video"}) {
    EXPECT_TRUE(m[0].contains(kind)) << kind << " " << m[0].dump();
    EXPECT_FALSE(m[1].contains(kind)) << kind;  // the text model has no encoders
  }
  EXPECT_GT(m[0]["tasks/all"]["count"], 0);
  EXPECT_FALSE(m[1].contains("tasks/all"));  // every vision task has an image
  EXPECT_TRUE(m[0].contains("perplexity/test"));
  EXPECT_TRUE(m[1].contains("perplexity/test"));  // the omni tokenizer keeps the text ids: same data
  EXPECT_NE(r.out.find("  -"), std::string::npos) << r.out;
}

}  // namespace
