// `nemokit data prep omni3 sft` and `nemokit run omni3 sft` as a user runs them: the omni chats
// scripts/setup.sh makes from Debian's packages (Fashion-MNIST, digits, espeak-ng speech, moving
// digits as video), a small language model made by `nemokit model init`, a few steps each. The
// encoders are added to it, trained while it stays frozen (or beside LoRA adapters), checkpointed
// with it, and exported and imported by `nemokit model`.
#include "omni_chats.hpp"
#include "run_cli.hpp"
#include "tiny_chat_model.hpp"

#include "nemokit/runtime/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::omni_chats_dir;
using nemokit::test::run_cli;
using nemokit::test::read_file;

namespace {

std::map<std::string, std::vector<float>> tensors_of(const fs::path& dir) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors" || e.path().filename() == "optimizer.safetensors") continue;
    auto f = nemokit::rt::SafetensorsFile::open(e.path().string());
    for (const auto& entry : f.entries()) {
      nemokit::rt::Tensor t = f.load_f32(entry.name);
      out[entry.name].assign(t.f32(), t.f32() + t.numel());
    }
  }
  return out;
}

class OmniSft : public ::testing::Test {
 protected:
  static inline fs::path base, model, chats;

  static void SetUpTestSuite() {
    base = nemokit::test::temp_folder("omni-sft");
    chats = base / "chats";
    fs::create_directories(chats);
    ASSERT_TRUE(fs::exists(omni_chats_dir() / "train.jsonl")) << "run scripts/setup.sh: it writes " << omni_chats_dir();
    nemokit::test::take_omni_chats(omni_chats_dir() / "train.jsonl", chats, "train.jsonl", 40);
    nemokit::test::take_omni_chats(omni_chats_dir() / "val.jsonl", chats, "val.jsonl", 4);
    nemokit::test::take_omni_chats(omni_chats_dir() / "eval.jsonl", chats, "eval.jsonl", 3);
    model = base / "base-model";
    nemokit::test::make_tiny_chat_model(base, {chats / "train.jsonl"}, nemokit::test::tiny_chat_model_config(600), 3, model);
  }

  // A config over the shipped tiny one: this folder's model, chats and outputs, small steps.
  fs::path config(const std::string& name, const std::string& extra = "") {
    fs::path dir = base / name;
    fs::create_directories(dir);
    fs::path cfg = dir / "omni.toml";
    std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                          "[model]\ninit_from = \"" << model.string() << "\"\n"
                          "[data]\ninputs = [\"" << (chats / "train.jsonl").string() << "\"]\n"
                          "validation = [\"" << (chats / "val.jsonl").string() << "\"]\n"
                          "pack_size = 256\noutput = \"" << (dir / "data").string() << "\"\n"
                          "[train]\nmicro_batch_size = 2\nglobal_batch_size = 2\nmax_steps = 4\nwarmup_steps = 1\n"
                          "eval_interval = 4\neval_steps = 1\nsave_interval = 2\nlog_interval = 1\n"
                          "[eval]\nfile = \"" << (chats / "eval.jsonl").string() << "\"\nmax_examples = 0\n"
                          "[checkpoint]\ndir = \"" << (dir / "ckpt").string() << "\"\n" << extra;
    return cfg;
  }
  std::string env(const std::string& name) { return "NEMOKIT_JOB_ROOT='" + (base / name / "jobs").string() + "' NEMOKIT_NUM_THREADS=2"; }
};

TEST_F(OmniSft, EncodersTrainWhileTheLanguageModelStaysBitIdentical) {
  fs::path cfg = config("tiny");
  auto r = run_cli("run omni3 sft -c '" + cfg.string() + "'", env("tiny"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("2 encoder(s) added"), std::string::npos) << r.out << r.err;
  json meta = json::parse(read_file(base / "tiny" / "data" / "metadata.json"));
  EXPECT_EQ(meta["media"]["vision"]["image_size"], 32);
  for (const char* f : {"media.npy", "tiles.npy", "audio.npy"}) EXPECT_TRUE(fs::exists(base / "tiny" / "data" / "train" / f)) << f;

  // every eval kind was answered (greedy, through the encoders)
  fs::path job;
  for (const auto& e : fs::directory_iterator(base / "tiny" / "jobs")) job = e.path();
  std::ifstream metrics(job / "metrics.jsonl");
  json last_eval;
  for (std::string line; std::getline(metrics, line);)
    if (json m = json::parse(line); m.contains("exact_match")) last_eval = m;
  for (const char* kind : {"fashion", "digits", "speech", "video"}) EXPECT_TRUE(last_eval["exact_match"].contains(kind)) << kind;

  fs::path ckpt = base / "tiny" / "ckpt";
  json config = json::parse(read_file(ckpt / "step_0000004" / "config.json"));
  EXPECT_EQ(config["vision_config"]["patch_size"], 4);
  EXPECT_EQ(config["audio_config"]["num_mel_bins"], 64);
  // <image>, <video> and <audio> joined the tokenizer; the model's rows cover them
  const json tok = json::parse(read_file(ckpt / "tokenizer.json"));
  int32_t top = 0;
  for (const auto& a : tok["added_tokens"]) top = std::max(top, a["id"].get<int32_t>());
  EXPECT_EQ(tok["added_tokens"].back()["content"], "<audio>");
  EXPECT_EQ(config["vocab_size"].get<int32_t>(), std::max(600, top + 1));
  auto before = tensors_of(model), at2 = tensors_of(ckpt / "step_0000002"), at4 = tensors_of(ckpt / "step_0000004");
  int lm = 0, moved = 0;
  for (const auto& [name, values] : at4) {
    if (name.rfind("backbone.", 0) == 0) {
      ++lm;
      const auto& b = before.at(name);
      // the first 600 embedding rows are the base model's, bit for bit; the rest were added
      ASSERT_GE(values.size(), b.size()) << name;
      for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(values[i], b[i]) << name << " " << i;
    } else {
      moved += values != at2.at(name);
    }
  }
  EXPECT_GT(lm, 10);
  EXPECT_GT(moved, 20);  // encoder and projector tensors trained between the two checkpoints
}

TEST_F(OmniSft, PeftTrainsOnlyAdaptersAndTheProjectorAndTheModelCommandsKeepTheEncoders) {
  fs::path cfg = config("peft", "[lora]\nenabled = true\nrank = 4\ntargets = [\"in_proj\", \"q_proj\", \"up_proj\"]\n");
  auto r = run_cli("run omni3 sft -c '" + cfg.string() + "' train.train_only='[]' +train.trained='[\"vision_projector.\"]'",
                   env("peft"));
  ASSERT_EQ(r.rc, 0) << r.err;
  fs::path ckpt = base / "peft" / "ckpt";
  auto at2 = tensors_of(ckpt / "step_0000002"), at4 = tensors_of(ckpt / "step_0000004");
  int adapters = 0, projector = 0;
  for (const auto& [name, values] : at4) {
    const bool changed = values != at2.at(name);
    const bool lora = name.find(".lora_") != std::string::npos, proj = name.rfind("vision_projector.", 0) == 0;
    if (!lora && !proj) EXPECT_FALSE(changed) << name;
    adapters += lora && changed, projector += proj && changed;
  }
  EXPECT_GT(adapters, 0);
  EXPECT_EQ(projector, 3);

  // lora-merge, export and import carry the encoders along
  fs::path merged = base / "peft" / "merged", hf = base / "peft" / "hf", back = base / "peft" / "imported";
  auto m = run_cli("model lora-merge '" + (ckpt / "step_0000004").string() + "' --out '" + merged.string() + "'");
  ASSERT_EQ(m.rc, 0) << m.err;
  EXPECT_FALSE(fs::exists(merged / "adapter_config.json"));
  auto e = run_cli("model export '" + merged.string() + "' --out '" + hf.string() + "' --dtype fp32");
  ASSERT_EQ(e.rc, 0) << e.err;
  auto i = run_cli("model import '" + hf.string() + "' --out '" + back.string() + "'");
  ASSERT_EQ(i.rc, 0) << i.err;
  auto a = tensors_of(merged), b = tensors_of(back);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(b.count("vision_projector.fc2.weight"));
  EXPECT_TRUE(b.count("audio_model.subsample.conv1.weight"));
}

TEST_F(OmniSft, BadMediaNameTheFileAndLine) {
  fs::path dir = base / "bad";
  fs::create_directories(dir);
  std::string good;
  {
    std::ifstream in(chats / "train.jsonl");
    std::getline(in, good);
  }
  auto prep_with = [&](const std::string& record) {
    std::ofstream(chats / "bad.jsonl") << good << "\n" << record << "\n";
    fs::path cfg = config("bad");
    return run_cli("data prep omni3 sft -c '" + cfg.string() + "' data.inputs='[\"" + (chats / "bad.jsonl").string() + "\"]'",
                   env("bad"));
  };
  const std::string where = (chats / "bad.jsonl").string() + ":2";
  auto r = prep_with(R"({"messages":[{"role":"user","content":"<image>\nWhat?"},{"role":"assistant","content":"A"}],"images":["../../etc/passwd"]})");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("leaves the data file's folder"), std::string::npos) << r.err;
  r = prep_with(R"({"messages":[{"role":"user","content":"<image>\nWhat?"},{"role":"assistant","content":"A"}],"images":["images/none.png"]})");
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  r = prep_with(R"({"messages":[{"role":"user","content":"<image><image>\nWhat?"},{"role":"assistant","content":"A"}],"images":[")" +
                json::parse(good)["images"][0].get<std::string>() + R"("]})");
  EXPECT_NE(r.err.find(where + ": more <image> placeholders"), std::string::npos) << r.err;
  r = prep_with(R"({"messages":[{"role":"user","content":"<audio>\nWhat?"},{"role":"assistant","content":"A"}],"audios":["images/../train.jsonl"]})");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find(where), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "data" / "metadata.json"));
}

}  // namespace
