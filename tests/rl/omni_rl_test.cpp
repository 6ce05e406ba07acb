// omni3's RL sub-stages as a user runs them: `nemokit pipe omni3` (sft -> rl mpo -> rl text ->
// rl vision, each from the job before), on a small language model made by `nemokit model init`
// and small subsets of the omni chats and vision tasks scripts/setup.sh makes; then MPO's pairs
// and a bad task on their own.
#include "omni_chats.hpp"
#include "run_cli.hpp"
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
