// `nemokit data prep nano3 rl` and `nemokit run nano3 rl` / `super3 rl rlvr` as a user runs them:
// the tasks scripts/setup.sh makes from Debian's packages, a small model made by `nemokit model
// init` with a tokenizer trained on the tasks, a few GRPO steps against the real environments.
#include "run_cli.hpp"
#include "tensor_compare.hpp"
#include "tiny_chat_model.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include "support/setup_data.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

const char* const kTaskFiles[] = {"arithmetic", "unscramble", "definitions", "capitals"};

fs::path tasks_dir() { return nemokit::test::setup_data_dir("NEMOKIT_RL_TASKS_DIR", "rl-tasks"); }

int64_t head(const fs::path& from, const fs::path& to, int lines, int every) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  int64_t n = 0;
  for (int i = 0; n < lines && std::getline(in, line); ++i)
    if (i % every == 0) out << line << "\n", ++n;
  return n;
}

std::vector<json> metrics_of(const fs::path& job) {
  std::vector<json> out;
  std::ifstream in(job / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

fs::path last_job(const fs::path& root) {
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(root)) jobs.push_back(e.path());
  std::sort(jobs.begin(), jobs.end());
  return jobs.empty() ? fs::path() : jobs.back();
}

class RlStage : public ::testing::Test {
 protected:
  static inline fs::path base, model, tasks;
  static inline int64_t total = 0;

  static void SetUpTestSuite() {
    base = nemokit::test::temp_folder("rl-stage");
    tasks = base / "tasks";
    fs::create_directories(tasks);
    ASSERT_TRUE(fs::exists(tasks_dir() / "arithmetic.jsonl")) << "run scripts/setup.sh: it writes " << tasks_dir();
    std::vector<fs::path> files;
    for (const char* f : kTaskFiles) {
      total += head(tasks_dir() / (std::string(f) + ".jsonl"), tasks / (std::string(f) + ".jsonl"), 150, 7);
      files.push_back(tasks / (std::string(f) + ".jsonl"));
    }
    model = base / "sft-model";
    nemokit::test::make_tiny_chat_model(base, files, nemokit::test::tiny_chat_model_config(500), 5, model);
  }

  // A config over the shipped tiny one: this folder's model, tasks and outputs, small steps.
  fs::path config(const std::string& name, const std::string& extra = "") {
    fs::path dir = base / name;
    fs::create_directories(dir);
    fs::path cfg = dir / "rl.toml";
    std::ofstream out(cfg);
    out << "defaults = [\"tiny\"]\n[model]\ninit_from = \"" << model.string() << "\"\n[data]\ninputs = [";
    for (const char* f : kTaskFiles) out << "\"" << (tasks / (std::string(f) + ".jsonl")).string() << "\", ";
    out << "]\nsplit = \"80,10,10\"\noutput = \"" << (dir / "data").string() << "\"\n"
        << "[grpo]\nnum_prompts_per_step = 2\nnum_generations_per_prompt = 3\nmax_new_tokens = 6\n"
        << "[train]\nmax_steps = 3\neval_interval = 2\nsave_interval = 2\nmicro_batch_size = 4\nlog_interval = 1\n"
        << "[eval]\nmax_tasks = 6\nmax_new_tokens = 6\n"
        << "[checkpoint]\ndir = \"" << (dir / "ckpt").string() << "\"\n"
        << extra;
    return cfg;
  }
  std::string env(const std::string& name) { return "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_NUM_THREADS=2"; }
};

TEST_F(RlStage, DataPrepWritesSeededSplitsWithManifestAndMetadata) {
  fs::path cfg = config("prep");
  auto r = run_cli("data prep nano3 rl -c '" + cfg.string() + "'", env("prep"));
  ASSERT_EQ(r.rc, 0) << r.err;
  fs::path data = base / "prep" / "data";
  json meta = json::parse(read_file(data / "metadata.json"));
  EXPECT_EQ(meta["type"], "SplitJsonlDataArtifact");
  const int64_t train = meta["splits"]["train"]["records"], val = meta["splits"]["val"]["records"],
                test = meta["splits"]["test"]["records"];
  EXPECT_EQ(train + val + test, total);
  // 80/10/10 of ~600 records by hash: each split near its share
  EXPECT_NEAR(double(train) / double(total), 0.8, 0.06);
  EXPECT_GT(val, 0);
  EXPECT_GT(test, 0);
  EXPECT_EQ(meta["source_datasets"].size(), 4u);
  EXPECT_EQ(meta["splits"]["train"]["environments"].size(), 3u);  // arithmetic, unscramble, multiple_choice
  json manifest = json::parse(read_file(data / "manifest.json"));
  std::set<std::string> seen;
  for (const char* split : {"train", "val", "test"}) {
    ASSERT_TRUE(fs::exists(manifest[split].get<std::string>())) << split;
    std::ifstream in(manifest[split].get<std::string>());
    for (std::string line; std::getline(in, line);) EXPECT_TRUE(seen.insert(line).second) << "in two splits: " << line;
  }
  EXPECT_EQ(int64_t(seen.size()), total);
  // The same records land in the same splits on a second run.
  const std::string before = read_file(data / "val.jsonl");
  ASSERT_EQ(run_cli("data prep nano3 rl -c '" + cfg.string() + "'", env("prep")).rc, 0);
  EXPECT_EQ(read_file(data / "val.jsonl"), before);
}

TEST_F(RlStage, BadTasksNameTheFileAndLine) {
  fs::path bad = base / "bad.jsonl";
  std::ofstream(bad) << R"({"prompt": "What is 1 + 1?", "expected_answer": "2", "environment": "arithmetic"})" "\n"
                     << R"({"prompt": "What is 2 + 2?", "expected_answer": "4"})" "\n";
  fs::path cfg = config("bad");
  auto r = run_cli("data prep nano3 rl -c '" + cfg.string() + "' data.inputs='[\"" + bad.string() + "\"]'", env("bad"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find(bad.string() + ":2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("environment"), std::string::npos) << r.err;
  // A number no double holds (the JSON parser's out_of_range, not its parse_error): the line named.
  std::ofstream(bad) << R"({"prompt": "What is 1 + 1?", "expected_answer": "2", "environment": "arithmetic"})" "\n"
                     << R"({"prompt": "x", "expected_answer": "4", "environment": "arithmetic", "n": 1e999})" "\n";
  r = run_cli("data prep nano3 rl -c '" + cfg.string() + "' data.inputs='[\"" + bad.string() + "\"]'", env("bad"));
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find(bad.string() + ":2: not valid JSON"), std::string::npos) << r.err;
}

TEST_F(RlStage, GrpoStepsWriteMetricsCheckpointAndResumeExactly) {
  // Straight through: 4 steps.
  fs::path cfg = config("straight");
  auto a = run_cli("run nano3 rl -c '" + cfg.string() + "' train.max_steps=4", env("straight"));
  ASSERT_EQ(a.rc, 0) << a.out << a.err;
  auto ma = metrics_of(last_job(base / "straight" / "jobs"));
  // evaluation at 0, steps 1..4, evaluations at 2 and 4
  ASSERT_EQ(ma.size(), 7u) << read_file(last_job(base / "straight" / "jobs") / "metrics.jsonl");
  EXPECT_EQ(ma[0]["step"], 0);
  EXPECT_TRUE(ma[0]["val_reward"].contains("all"));
  const json& s1 = ma[1];
  EXPECT_EQ(s1["step"], 1);
  for (const char* k : {"reward_mean", "reward_std", "kl", "entropy", "clip_fraction", "response_length", "rollout_tokens_per_s"})
    EXPECT_TRUE(s1.contains(k)) << k;
  EXPECT_GE(s1["reward_mean"].get<double>(), 0.0);
  EXPECT_LE(s1["reward_mean"].get<double>(), 1.0);
  EXPECT_GT(s1["entropy"].get<double>(), 0.0);  // an untrained model is far from deterministic
  EXPECT_GT(s1["response_length"].get<double>(), 0.0);
  EXPECT_LE(s1["response_length"].get<double>(), 6.0);
  EXPECT_GT(s1["rollout_tokens_per_s"].get<double>(), 0.0);
  EXPECT_EQ(s1["clip_fraction"], 0.0);  // one update per rollout: the policy is still the sampler
  EXPECT_EQ(ma.back()["step"], 4);
  EXPECT_TRUE(ma.back().contains("samples"));
  EXPECT_TRUE(fs::exists(base / "straight" / "ckpt" / "step_0000004" / "model.safetensors"));
  EXPECT_NE(a.err.find("val reward"), std::string::npos) << a.err;

  // Interrupted after 2 steps, then resumed to 4: the same rollouts, rewards and losses.
  fs::path cfg2 = config("resumed");
  ASSERT_EQ(run_cli("run nano3 rl -c '" + cfg2.string() + "' train.max_steps=2", env("resumed")).rc, 0);
  auto b = run_cli("run nano3 rl -c '" + cfg2.string() + "' train.max_steps=4", env("resumed"));
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_NE((b.out + b.err).find("resumed from"), std::string::npos) << b.out << b.err;
  auto mb = metrics_of(last_job(base / "resumed" / "jobs"));
  ASSERT_EQ(mb.size(), 3u);  // steps 3 and 4, the evaluation at 4; no second step-0 evaluation
  EXPECT_EQ(mb[0]["step"], 3);
  for (int i = 0; i < 2; ++i) {
    const json& x = ma[size_t(i == 0 ? 4 : 5)];
    const json& y = mb[size_t(i)];
    ASSERT_EQ(x["step"], y["step"]);
    EXPECT_EQ(x["reward_mean"], y["reward_mean"]);
    EXPECT_EQ(x["response_length"], y["response_length"]);
    EXPECT_NEAR(x["loss"].get<double>(), y["loss"].get<double>(), 1e-6);
  }
  EXPECT_EQ(ma.back()["val_reward"], mb.back()["val_reward"]);
}

TEST_F(RlStage, Super3RlvrWithKlAndSequenceNormalizationAndSeveralEpochs) {
  fs::path cfg = config("super3", "");
  auto r = run_cli("run super3 rl rlvr -c '" + cfg.string() +
                       "' train.max_steps=2 grpo.kl_beta=0.05 grpo.loss_normalization=sequence grpo.num_epochs=2"
                       " grpo.baseline=leave_one_out train.global_batch_size=3 train.lr=1e-2",
                   env("super3"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  auto m = metrics_of(last_job(base / "super3" / "jobs"));
  ASSERT_GE(m.size(), 3u);
  EXPECT_EQ(m[1]["optimizer_updates"], 4);  // 2 epochs x 6 rollouts / 3 per update
  // With reward spread in a group, the first update moves the policy, so the later updates see
  // a KL to the sampler and to the reference; with none (an untrained model often scores 0
  // everywhere) every gradient is exactly zero, KL starts at 0 and the policy stays put.
  for (size_t i : {size_t(1), size_t(2)}) {
    ASSERT_EQ(m[i]["step"], int(i));
    EXPECT_GE(m[i]["kl"].get<double>(), 0.0);
    if (m[i]["flat_groups"].get<double>() < 1.0) EXPECT_GT(m[i]["kl_old"].get<double>(), 0.0) << m[i].dump();
    else EXPECT_EQ(m[i]["kl_old"].get<double>(), 0.0) << m[i].dump();
  }
}

// Data parallel: two ranks (under mpirun) each sampling and training half of every step's prompts
// give the rewards, losses and held-out rewards of one rank with all of them, and after the last
// step the same weights (relative error below 1e-6); with the optimizer state sharded (ZeRO-1)
// too, and with the routed experts split over the two ranks (expert parallel: generation steps
// both ranks together, exchanging tokens at every position). Metrics are written once, by rank 0.
// Each rank's half of a step is whole micro-batches, so every forward sees the rows one rank
// would batch together.
TEST_F(RlStage, TwoRanksWithHalfThePromptsTrainAsOneRank) {
  const std::string steps =
      " train.max_steps=3 grpo.num_prompts_per_step=4 train.micro_batch_size=3 eval.max_tasks=5 train.lr=1e-3";
  // Every task also scored by the share of letters in its answer: the groups' rewards differ.
  const std::string graded = "[environments]\nplugins = [\"" LETTER_SHARE "\"]\nalways = {letter_share = 1.0}\n";
  auto run = [&](const std::string& name, const std::string& extra) {
    fs::path cfg = config(name, graded);
    return run_cli("run nano3 rl -c '" + cfg.string() + "'" + steps + extra,
                   "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
  };
  auto one = run("dp-one", "");
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  auto two = run("dp-two", " +run.nproc_per_node=2");
  ASSERT_EQ(two.rc, 0) << two.out << two.err;
  EXPECT_NE((two.out + two.err).find("over 2 data-parallel ranks (mpi)"), std::string::npos) << two.out << two.err;
  auto zero = run("dp-zero", " +run.nproc_per_node=2 +parallel.zero=1");
  ASSERT_EQ(zero.rc, 0) << zero.out << zero.err;
  auto ep = run("dp-ep", " +run.nproc_per_node=2 +parallel.ep=2");
  ASSERT_EQ(ep.rc, 0) << ep.out << ep.err;
  EXPECT_NE((ep.out + ep.err).find("experts split over 2 ranks (expert parallel)"), std::string::npos) << ep.out << ep.err;

  const auto m1 = metrics_of(last_job(base / "dp-one" / "jobs"));
  ASSERT_EQ(m1.size(), 6u);  // evaluation at 0, steps 1..3, evaluations at 2 and 3
  double spread = 0;  // the updates must have had something to learn from
  for (const char* name : {"dp-two", "dp-zero", "dp-ep"}) {
    const auto m2 = metrics_of(last_job(base / name / "jobs"));
    ASSERT_EQ(m2.size(), m1.size()) << name << ": metrics.jsonl must hold each line once";
    for (size_t i = 0; i < m1.size(); ++i) {
      ASSERT_EQ(m1[i]["step"], m2[i]["step"]) << name;
      if (m1[i].contains("val_reward")) {
        EXPECT_EQ(m1[i]["val_reward"], m2[i]["val_reward"]) << name << " line " << i;
        continue;
      }
      EXPECT_EQ(m1[i]["reward_mean"], m2[i]["reward_mean"]) << name << " step " << m1[i]["step"];
      EXPECT_EQ(m1[i]["reward"], m2[i]["reward"]) << name;
      EXPECT_EQ(m1[i]["response_length"], m2[i]["response_length"]) << name;
      // The surrogate's value sits near 0 (advantages are centred): an absolute bound.
      EXPECT_NEAR(m1[i]["loss"].get<double>(), m2[i]["loss"].get<double>(), 1e-6) << name << " step " << m1[i]["step"];
      EXPECT_LT(nemokit::test::relative_error(m1[i]["entropy"].get<double>(), m2[i]["entropy"].get<double>()), 1e-6) << name;
      spread = std::max(spread, 1.0 - m1[i]["flat_groups"].get<double>());
    }
    auto [worst, tensor] = nemokit::test::worst_tensor_error(base / "dp-one" / "ckpt" / "step_0000003" / "model.safetensors",
                                                             base / name / "ckpt" / "step_0000003" / "model.safetensors");
    EXPECT_LT(worst, 1e-6) << name << ": worst tensor " << tensor;
  }
  EXPECT_GT(spread, 0.0) << "every group's rewards were equal: no update moved the policy";
}

// train.device = "cuda" through the CUDA module built over the kernel emulator (tests/gpu): the
// policy's scoring, the updates and the optimizer run on the "device", the rollouts on the CPU
// model synced after each step. The first step samples from the same starting model on both
// paths, so its rollouts and rewards are the CPU's exactly, and its entropy and gradient norm
// (bf16 passes) are close. Two epochs take the path that scores the current policy on the device
// before an update, and a KL term to the reference (scored on the GPU too). The checkpoint after
// the step (written from the CPU model) moved as the CPU's did: the cosine between the two runs'
// changes to the starting model, over every tensor.
// One step only: the next step's samples, drawn from two slightly different policies, part ways
// (the cosine after two steps was 0.89).
TEST_F(RlStage, TrainsOnTheCudaPathLikeTheCpu) {
  const std::string graded = "[environments]\nplugins = [\"" LETTER_SHARE "\"]\nalways = {letter_share = 1.0}\n";
  std::map<std::string, std::vector<json>> runs;
  for (std::string device : {"cpu", "cuda"}) {
    const std::string name = "device-" + device;
    fs::path cfg = config(name, graded);
    auto r = run_cli("run nano3 rl -c '" + cfg.string() +
                         "' train.max_steps=1 grpo.num_epochs=2 grpo.kl_beta=0.05 train.micro_batch_size=2 train.lr=1e-3"
                         " eval.max_tasks=3"
                         " +train.device=" + device,
                     "NEMOKIT_CUDA_MODULE='" NEMOKIT_EMULATED_CUDA_MODULE "' " + env(name));
    ASSERT_EQ(r.rc, 0) << r.out << r.err;
    if (device == "cuda") EXPECT_NE((r.out + r.err).find(", updates on cuda;"), std::string::npos) << r.out << r.err;
    runs[device] = metrics_of(last_job(base / name / "jobs"));
  }
  const auto& cpu = runs["cpu"];
  const auto& gpu = runs["cuda"];
  ASSERT_EQ(cpu.size(), gpu.size());
  ASSERT_EQ(cpu[1]["step"], 1);
  EXPECT_EQ(cpu[0]["val_reward"], gpu[0]["val_reward"]);
  EXPECT_EQ(cpu[1]["reward"], gpu[1]["reward"]);
  EXPECT_EQ(cpu[1]["response_length"], gpu[1]["response_length"]);
  EXPECT_LT(nemokit::test::relative_error(cpu[1]["entropy"].get<double>(), gpu[1]["entropy"].get<double>()), 0.03);
  EXPECT_LT(nemokit::test::relative_error(cpu[1]["grad_norm"].get<double>(), gpu[1]["grad_norm"].get<double>()), 0.05);
  // The KL to the reference (scored on the GPU from its own bf16 copy): as the CPU's (measured
  // 1% apart), and exactly 0 while the policy is still the starting model (one update per step,
  // so the only update sees the policy as it started).
  EXPECT_LT(nemokit::test::relative_error(cpu[1]["kl"].get<double>(), gpu[1]["kl"].get<double>()), 0.05);
  EXPECT_GT(gpu[1]["kl"].get<double>(), 0.0);
  fs::path cfg = config("device-kl-start", graded);
  auto r = run_cli("run nano3 rl -c '" + cfg.string() +
                       "' train.max_steps=1 grpo.kl_beta=0.05 train.micro_batch_size=2 eval.max_tasks=1 +train.device=cuda",
                   "NEMOKIT_CUDA_MODULE='" NEMOKIT_EMULATED_CUDA_MODULE "' " + env("device-kl-start"));
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const auto at_start = metrics_of(last_job(base / "device-kl-start" / "jobs"));
  ASSERT_GE(at_start.size(), 2u);
  EXPECT_EQ(at_start[1]["kl"].get<double>(), 0.0);

  auto start = nemokit::rt::SafetensorsFile::open((model / "model.safetensors").string());
  auto a = nemokit::rt::SafetensorsFile::open((base / "device-cpu" / "ckpt" / "step_0000001" / "model.safetensors").string());
  auto b = nemokit::rt::SafetensorsFile::open((base / "device-cuda" / "ckpt" / "step_0000001" / "model.safetensors").string());
  double dot = 0, na = 0, nb = 0;
  for (const auto& e : start.entries()) {
    const nemokit::rt::Tensor s0 = start.load_f32(e.name), x = a.load_f32(e.name), y = b.load_f32(e.name);
    for (int64_t i = 0; i < s0.numel(); ++i) {
      const double da = double(x.f32()[i]) - s0.f32()[i], db = double(y.f32()[i]) - s0.f32()[i];
      dot += da * db, na += da * da, nb += db * db;
    }
  }
  ASSERT_GT(na, 0.0) << "the CPU run did not move the weights";
  ASSERT_GT(nb, 0.0) << "the cuda run's checkpoint holds the starting weights: its updates never reached the CPU model";
  // Measured: cosine 0.9988, sizes 1.0003 apart.
  EXPECT_GT(dot / std::sqrt(na * nb), 0.98) << "the runs' weight changes point apart";
  EXPECT_LT(std::abs(std::sqrt(nb / na) - 1.0), 0.05) << "the runs' weight changes differ in size";
}

TEST_F(RlStage, PromptsThatDoNotSplitOverTheRanksAreRefusedNamingTheKey) {
  fs::path cfg = config("dp-bad");
  auto r = run_cli("run nano3 rl -c '" + cfg.string() + "' grpo.num_prompts_per_step=3 +run.nproc_per_node=2",
                   "NEMOKIT_JOB_ROOT='" + (base / "dp-bad" / "jobs").string() + "' NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE((r.out + r.err).find("grpo.num_prompts_per_step: 3 prompts do not split over 2 data-parallel ranks"),
            std::string::npos)
      << r.out << r.err;
  // A model without MoE layers has no experts to split (its config says so before any weight loads).
  fs::copy(model, base / "no-experts", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  json no_moe = json::parse(read_file(base / "no-experts" / "config.json"));
  no_moe["hybrid_override_pattern"] = "M*-";
  std::ofstream(base / "no-experts" / "config.json") << no_moe.dump(2);
  auto e = run_cli("run nano3 rl -c '" + cfg.string() + "' +run.nproc_per_node=2 +parallel.ep=2 model.init_from='" +
                       (base / "no-experts").string() + "'",
                   "NEMOKIT_JOB_ROOT='" + (base / "dp-bad" / "jobs").string() + "' NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60");
  EXPECT_NE(e.rc, 0);
  EXPECT_NE((e.out + e.err).find("parallel.ep: 2, but the model has no MoE layer"), std::string::npos) << e.out << e.err;
}

TEST_F(RlStage, UndeliveredSubstagesAndBadKeysSayWhat) {
  fs::path cfg = config("refuse");
  auto typo = run_cli("run nano3 rl -c '" + cfg.string() + "' grpo.clip_lwo=0.1", env("refuse"));
  EXPECT_NE(typo.rc, 0);
  EXPECT_NE(typo.err.find("grpo.clip_lwo"), std::string::npos) << typo.err;
  auto norm = run_cli("run nano3 rl -c '" + cfg.string() + "' grpo.loss_normalization=mean", env("refuse"));
  EXPECT_NE(norm.rc, 0);
  EXPECT_NE(norm.err.find("grpo.loss_normalization"), std::string::npos) << norm.err;
}

}  // namespace
