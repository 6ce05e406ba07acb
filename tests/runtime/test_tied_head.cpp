// A model whose head is tied to its embeddings, in and out of checkpoint folders: transformers'
// NemotronH never ties them, so the folder carries lm_head.weight as a copy of the embeddings,
// and what transformers saves of a tied config (two separate tensors) loads back in nemokit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/safetensors.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kFixtures = std::string(NEMOKIT_SOURCE_DIR) + "/tests/runtime/fixtures";

std::string scratch(const std::string& name) {
  const std::string path = scratch_path("runtime_tied_head_test", name);
  fs::remove_all(path);
  return path;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

Tokenizer small_tokenizer() {
  const std::string corpus = scratch("corpus.txt");
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 40; ++i) out << "a small corpus for a small tokenizer " << i << "\n";
  }
  BpeTrainOptions bo;
  bo.vocab_size = 280;
  bo.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  return train_bpe({corpus}, bo);
}

NemotronHConfig tied_config() {
  NemotronHConfig c = tiny_config("ME*-");
  c.vocab_size = 280;
  c.tie_word_embeddings = true;
  return c;
}

std::vector<float> logits_of(NemotronH& model, const Batch& batch) {
  const Tensor& l = model.forward(batch);
  return std::vector<float>(l.f32(), l.f32() + l.numel());
}

Tensor stored(const std::string& dir, const std::string& name) {
  return SafetensorsFile::open(dir + "/model.safetensors").load_f32(name);
}

bool equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.f32(), a.f32() + a.numel(), b.f32());
}

}  // namespace

TEST(runtime_tied_head, TrainingCheckpointCarriesTheHeadAndTheTokenizerFiles) {
  NemotronH model(tied_config());
  model.init_weights(5);
  AdamW opt(model.parameters(), AdamWConfig{});
  train_step(model, opt, 1e-2f, {random_batch(2, 8, 280, 3)}, TrainOptions{});
  const Tokenizer tok = small_tokenizer();
  const std::string dir = scratch("ckpt");
  TrainerState st;
  st.step = 1;
  save_training_checkpoint(dir, model, opt, st, &tok);

  // The head is in the file, as the embeddings' values, for transformers to load.
  EXPECT_TRUE(equal(stored(dir, "lm_head.weight"), model.find("backbone.embeddings.weight")->value));
  EXPECT_EQ(model.find("lm_head.weight"), nullptr) << "a tied model has no head parameter of its own";
  // AutoTokenizer's files: tokenizer.json and tokenizer_config.json naming the special tokens.
  EXPECT_EQ(Tokenizer::load(dir + "/tokenizer.json").to_json(), tok.to_json());
  json tc = read_json(dir + "/tokenizer_config.json");
  EXPECT_EQ(tc["tokenizer_class"], "PreTrainedTokenizerFast");
  EXPECT_EQ(tc["bos_token"], "<|im_start|>");  // bos_token_id 1
  EXPECT_EQ(tc["eos_token"], "<|im_end|>");    // eos_token_id 2

  // Back in nemokit: still tied, the same logits, and training resumes from it.
  const Batch batch = random_batch(2, 8, 280, 9);
  auto again = load_pretrained(dir);
  EXPECT_TRUE(again->config().tie_word_embeddings);
  EXPECT_EQ(logits_of(*again, batch), logits_of(model, batch));
  NemotronH resumed(tied_config());
  AdamW opt2(resumed.parameters(), AdamWConfig{});
  EXPECT_EQ(load_training_checkpoint(dir, resumed, opt2).step, 1);
  EXPECT_EQ(logits_of(resumed, batch), logits_of(model, batch));

  // Exported in bf16 the head is the embeddings' bf16 values, too.
  const std::string bf16 = scratch("bf16");
  save_pretrained(model, bf16, kDefaultShardBytes, DType::bf16);
  EXPECT_TRUE(equal(stored(bf16, "lm_head.weight"), stored(bf16, "backbone.embeddings.weight")));
  EXPECT_TRUE(load_pretrained(bf16)->config().tie_word_embeddings);
}

TEST(runtime_tied_head, TransformersSavedTiedConfigLoadsWithItsOwnHead) {
  // transformers saves a tied NemotronH config exactly as an untied one (its head is separate)
  // with tie_word_embeddings true in config.json: the untied fixture with that one key changed.
  const std::string dir = scratch("transformers_tied");
  fs::copy(kFixtures + "/nemotronh_tiny", dir);
  json config = read_json(dir + "/config.json");
  config["tie_word_embeddings"] = true;
  std::ofstream(dir + "/config.json") << config.dump(2);

  auto tied = load_pretrained(dir);
  auto untied = load_pretrained(kFixtures + "/nemotronh_tiny");
  EXPECT_FALSE(tied->config().tie_word_embeddings) << "its head differs from the embeddings: transformers' logits use it";
  ASSERT_NE(tied->find("lm_head.weight"), nullptr);
  const Batch batch = random_batch(2, 6, 64, 4);
  EXPECT_EQ(logits_of(*tied, batch), logits_of(*untied, batch));
}

TEST(runtime_tied_head, ResumingATiedModelRefusesAHeadThatDiffers) {
  NemotronH model(tied_config());
  model.init_weights(6);
  const std::string dir = scratch("moved_head");
  save_pretrained(model, dir);
  auto file = SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<NamedTensor> tensors;
  for (const auto& e : file.entries()) tensors.emplace_back(e.name, file.load_f32(e.name));
  for (auto& [name, t] : tensors)
    if (name == "lm_head.weight") t.f32()[7] += 1.0f;
  write_safetensors(dir + "/model.safetensors", tensors);

  NemotronH same_shape(tied_config());
  try {
    load_weights(same_shape, dir);
    FAIL() << "a tied model cannot take a head of its own";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'lm_head.weight' differs from backbone.embeddings.weight"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(load_pretrained(dir)->config().tie_word_embeddings);
}
