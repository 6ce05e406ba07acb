// omni3's RL sub-stages as a user runs them: `nemokit pipe omni3` (sft -> rl mpo -> rl text ->
// rl vision, each from the job before), on a small language model made by `nemokit model init`
// and small subsets of the omni chats and vision tasks scripts/setup.sh makes; then MPO's pairs
// and a bad task on their own.
#include "omni_chats.hpp"
#include "run_cli.hpp"
#include "tensor_compare.hpp"
#include "tiny_chat_model.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

std::vector<json> metrics_of(const fs::path& job) {
  std::vector<json> out;
  std::ifstream in(job / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// The job folder under `jobs` whose name ends with `suffix` (TIMESTAMP-FAMILY-STAGE[-SUBSTAGE]).
fs::path job_named(const fs::path& jobs, const std::string& suffix) {
  for (const auto& e : fs::directory_iterator(jobs))
    if (e.path().filename().string().ends_with(suffix)) return e.path();
  return {};
}

class OmniRl : public ::testing::Test {
 protected:
  static inline fs::path base, chats;

  static void SetUpTestSuite() {
    base = nemokit::test::temp_folder("omni-rl");
    chats = base / "chats";
    fs::create_directories(chats);
    const fs::path from = nemokit::test::omni_chats_dir();
    ASSERT_TRUE(fs::exists(from / "rl-vision.jsonl")) << "run scripts/setup.sh: it writes " << from;
    nemokit::test::take_omni_chats(from / "train.jsonl", chats, "train.jsonl", 20);
    nemokit::test::take_omni_chats(from / "val.jsonl", chats, "val.jsonl", 2);
    nemokit::test::take_omni_chats(from / "eval.jsonl", chats, "eval.jsonl", 2);
    nemokit::test::take_omni_chats(from / "rl-vision.jsonl", chats, "rl-vision.jsonl", 30);
    // the tiny configs start omni3 sft from CHECKPOINTS/nano3-sft-tiny
    nemokit::test::make_tiny_chat_model(base, {chats / "train.jsonl"}, nemokit::test::tiny_chat_model_config(600), 3,
                                        base / "ckpt" / "nano3-sft-tiny");
  }

  std::string env() {
    return "NEMOKIT_JOB_ROOT='" + (base / "jobs").string() + "' NEMOKIT_DATA_DIR='" + (base / "data").string() +
           "' NEMOKIT_CHECKPOINT_DIR='" + (base / "ckpt").string() + "' NEMOKIT_ARTIFACTS_ROOT='" + (base / "store").string() +
           "' NEMOKIT_OMNI_CHATS_DIR='" + chats.string() +
           "' NEMOKIT_NUM_THREADS=2";
  }
};

TEST_F(OmniRl, PipeRunsSftMpoTextAndVisionEachFromTheJobBefore) {
  auto r = run_cli("pipe omni3 -c tiny train.max_steps=2 train.eval_interval=2 train.save_interval=2", env());
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("# pipe omni3: omni3 sft -> omni3 rl mpo -> omni3 rl text -> omni3 rl vision\n"), std::string::npos)
      << r.out;
  const fs::path jobs = base / "jobs";
  const fs::path sft = job_named(jobs, "omni3-sft"), mpo = job_named(jobs, "omni3-rl-mpo"),
                 text = job_named(jobs, "omni3-rl-text"), vision = job_named(jobs, "omni3-rl-vision");
  ASSERT_FALSE(sft.empty() || mpo.empty() || text.empty() || vision.empty()) << r.out;
  // each stage started from the model the job before it published to the artifact store
  const std::string all = r.out + r.err;
  EXPECT_NE(all.find("MPO from " + (base / "ckpt" / "omni3-sft-tiny" / "step_0000002").string()), std::string::npos) << all;
  EXPECT_NE(all.find("GRPO from " + (base / "ckpt" / "omni3-rl-mpo-tiny" / "step_0000002").string()), std::string::npos) << all;
  EXPECT_NE(all.find("GRPO from " + (base / "ckpt" / "omni3-rl-text-tiny" / "step_0000002").string()), std::string::npos) << all;
  EXPECT_NE(all.find("artifact model.init_from = \"omni3-rl-text-model:latest\" -> omni3-rl-text-model:v1"), std::string::npos)
      << all;
  for (const char* c : {"omni3-sft-tiny", "omni3-rl-mpo-tiny", "omni3-rl-text-tiny", "omni3-rl-vision-tiny"}) {
    const fs::path step = base / "ckpt" / c / "step_0000002";
    ASSERT_TRUE(fs::exists(step / "config.json")) << step;
    EXPECT_TRUE(json::parse(read_file(step / "config.json")).contains("vision_config")) << c;
  }
  // MPO: pairs from the SFT model's answers, the held-out margin before and after
  json pairs = json::parse(read_file(base / "data" / "omni3-mpo-tiny" / "metadata.json"));
  EXPECT_GT(pairs["splits"]["train"]["records"].get<int64_t>(), 0);
  int margins = 0;
  for (const json& m : metrics_of(mpo)) margins += m.contains("val_logp_margin");
  EXPECT_EQ(margins, 2);  // step 0 and step 2
  // vision: held-out reward per kind, the images through the encoder
  json last;
  for (const json& m : metrics_of(vision))
    if (m.contains("val_reward")) last = m;
  ASSERT_TRUE(last.contains("val_reward")) << vision;
  int kinds = 0;
  for (const char* kind : {"fashion", "digits", "digit_sum"}) kinds += last["val_reward"].contains(kind);
  EXPECT_GE(kinds, 1) << last.dump();
  // the vision tasks' images were copied into the prepared data
  EXPECT_TRUE(fs::exists(base / "data" / "omni3-vision-tiny" / "media"));
}

// MPO data parallel: two ranks, each scoring and training half of every step's pairs (and of the
// held-out pairs), follow one rank with all of them: the same loss terms and held-out margins
// step by step and the same weights after the last step; so do two ranks with the routed
// experts split between them (expert parallel). Both start from one omni3 SFT model and
// train on the same pairs (the first run makes them).
TEST_F(OmniRl, MpoOnTwoRanksTrainsAsOnOneRank) {
  const fs::path root = base / "mpo-dp";
  fs::create_directories(root / "ckpt");
  fs::copy(base / "ckpt" / "nano3-sft-tiny", root / "ckpt" / "nano3-sft-tiny", fs::copy_options::recursive);
  // Each run's job folders under their own root (two runs may start within one second).
  auto env_for = [&](const std::string& run) {
    return "NEMOKIT_JOB_ROOT='" + (root / ("jobs-" + run)).string() + "' NEMOKIT_DATA_DIR='" + (root / "data").string() +
           "' NEMOKIT_CHECKPOINT_DIR='" + (root / "ckpt").string() + "' NEMOKIT_ARTIFACTS_ROOT='" + (root / "store").string() +
           "' NEMOKIT_OMNI_CHATS_DIR='" + chats.string() + "' NEMOKIT_NUM_THREADS=1 NEMOKIT_COMM_TIMEOUT_S=60";
  };
  auto sft = run_cli("run omni3 sft -c tiny train.max_steps=2 train.eval_interval=0 train.save_interval=2", env_for("sft"));
  ASSERT_EQ(sft.rc, 0) << sft.out << sft.err;
  const std::string from = " model.init_from='" + (root / "ckpt" / "omni3-sft-tiny" / "step_0000002").string() + "'" +
                           " train.max_steps=3 train.eval_interval=3 train.pairs_per_step=4 train.micro_batch_size=4 train.lr=1e-3";
  auto mpo = [&](const std::string& run, const std::string& extra) {
    return run_cli("run omni3 rl mpo -c tiny" + from + " checkpoint.dir='" + (root / run).string() + "'" + extra, env_for(run));
  };
  auto one = mpo("mpo-1", "");
  ASSERT_EQ(one.rc, 0) << one.out << one.err;
  auto two = mpo("mpo-2", " +run.nproc_per_node=2");
  ASSERT_EQ(two.rc, 0) << two.out << two.err;
  EXPECT_NE((two.out + two.err).find("over 2 data-parallel ranks (mpi)"), std::string::npos) << two.out << two.err;
  auto ep = mpo("mpo-ep", " +run.nproc_per_node=2 +parallel.ep=2");
  ASSERT_EQ(ep.rc, 0) << ep.out << ep.err;
  EXPECT_NE((ep.out + ep.err).find("experts split over 2 ranks (expert parallel)"), std::string::npos) << ep.out << ep.err;

  auto metrics_of_run = [&](const std::string& run) {
    const fs::path jobs = root / ("jobs-" + run);
    return fs::exists(jobs) ? metrics_of(fs::directory_iterator(jobs)->path()) : std::vector<json>();
  };
  const std::vector<json> m1 = metrics_of_run("mpo-1");
  ASSERT_EQ(m1.size(), 5u);  // held-out at 0, steps 1..3, held-out at 3
  for (const char* name : {"mpo-2", "mpo-ep"}) {
    const std::vector<json> m2 = metrics_of_run(name);
    ASSERT_EQ(m2.size(), m1.size()) << name << ": metrics.jsonl must hold each line once";
    for (size_t i = 0; i < m1.size(); ++i)
      for (const char* k : {"loss", "reward_margin", "val_logp_margin", "val_preference_accuracy"})
        if (m1[i].contains(k)) EXPECT_NEAR(m1[i][k].get<double>(), m2[i][k].get<double>(), 1e-6) << name << " " << k << " line " << i;
    auto [worst, tensor] = nemokit::test::worst_tensor_error(root / "mpo-1" / "step_0000003" / "model.safetensors",
                                                             root / name / "step_0000003" / "model.safetensors");
    EXPECT_LT(worst, 1e-6) << name << ": worst tensor " << tensor;
  }
}

TEST_F(OmniRl, ATaskImageOutsideItsFolderIsRefusedWithItsLine) {
  fs::path dir = base / "bad";
  fs::create_directories(dir);
  std::ofstream(dir / "tasks.jsonl")
      << R"({"prompt":[{"role":"user","content":"<image>\nWhat is in this image?"}],"images":["../chats/images/x.png"],"expected_answer":"Bag","environment":"exact_match"})"
      << "\n";
  auto r = run_cli("data prep omni3 rl vision -c tiny data.inputs='[\"" + (dir / "tasks.jsonl").string() + "\"]' data.output='" +
                       (dir / "out").string() + "'",
                   env());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find((dir / "tasks.jsonl").string() + ":1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("leaves the data file's folder"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

}  // namespace
