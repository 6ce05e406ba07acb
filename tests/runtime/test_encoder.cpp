// Omni models: vision and audio encoders with their projectors, their tokens at the batch's
// media positions, gradients against finite differences, padding, freezing, checkpoints and
// incremental decoding with encoder tokens in the prompt.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "grad_check.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/model.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;

namespace {

EncoderConfig vision_config() {
  EncoderConfig c;
  c.modality = Modality::vision;
  c.hidden_size = 8, c.num_hidden_layers = 2, c.num_attention_heads = 2, c.intermediate_size = 12;
  c.image_size = 8, c.patch_size = 2, c.num_channels = 3, c.downsample = 2;  // 16 patches -> 4 tokens
  c.max_position_embeddings = 16, c.projector_hidden_size = 10, c.initializer_range = 0.3;
  return c;
}

EncoderConfig audio_config() {
  EncoderConfig c;
  c.modality = Modality::audio;
  c.hidden_size = 8, c.num_hidden_layers = 1, c.num_attention_heads = 2, c.intermediate_size = 12;
  c.num_mel_bins = 5, c.max_position_embeddings = 8, c.projector_hidden_size = 10, c.initializer_range = 0.3;
  return c;
}

std::unique_ptr<NemotronH> omni_model() {
  auto m = std::make_unique<NemotronH>(tiny_config("M*-"));
  m->init_weights(3);
  m->add_encoder(vision_config(), 11);
  m->add_encoder(audio_config(), 12);
  return m;
}

MediaInput image_input(int64_t tiles, std::vector<int64_t> positions, uint32_t seed) {
  std::mt19937 gen(seed);
  MediaInput in;
  in.modality = Modality::vision;
  in.items = tiles;
  in.data = random_vector(tiles * 3 * 8 * 8, gen);
  in.positions = std::move(positions);
  return in;
}

// Clips of `frames` real frames each, zero-padded to the longest.
MediaInput audio_input(const std::vector<int64_t>& frames, std::vector<int64_t> positions, uint32_t seed) {
  std::mt19937 gen(seed);
  MediaInput in;
  in.modality = Modality::audio;
  in.items = int64_t(frames.size());
  for (int64_t f : frames) in.length = std::max(in.length, f);
  in.valid = frames;
  in.data.assign(in.items * in.length * 5, 0.0f);
  for (int64_t i = 0; i < in.items; ++i)
    for (int64_t t = 0; t < frames[i] * 5; ++t) in.data[i * in.length * 5 + t] = std::normal_distribution<float>()(gen);
  in.positions = std::move(positions);
  return in;
}

// Two rows of 12: an image's 4 tokens in row 0, two clips (9 and 5 frames -> 3 and 2 tokens) in row 1.
Batch media_batch() {
  Batch b = random_batch(2, 12, 32, 5);
  b.media.push_back(image_input(1, {2, 3, 4, 5}, 6));
  b.media.push_back(audio_input({9, 5}, {12 + 1, 12 + 2, 12 + 3, 12 + 6, 12 + 7}, 7));
  for (auto& m : b.media)
    for (int64_t p : m.positions) b.targets[p] = -1;  // as SFT masks user turns
  return b;
}

}  // namespace

TEST(runtime_encoder, TokenCountsFollowTheConfig) {
  EXPECT_EQ(vision_config().positions(), 16);
  EXPECT_EQ(vision_config().output_tokens(), 4);
  EXPECT_EQ(audio_config().output_tokens(9), 3);   // 9 -> 5 -> 3
  EXPECT_EQ(audio_config().output_tokens(100), 25);
  EXPECT_EQ(audio_config().output_tokens(1), 1);
}

TEST(runtime_encoder, EncoderAndProjectorGradientsMatchFiniteDifferences) {
  auto model = omni_model();
  Batch b = media_batch();
  LossOptions opts;
  opts.mean = false;
  auto loss = [&] { return model->forward_backward(b, opts, false).loss_sum; };
  model->zero_grad();
  model->forward_backward(b, opts, true);
  int checked = 0;
  for (Parameter* p : model->parameters()) {
    if (p->name.find("_model.") == std::string::npos && p->name.find("_projector.") == std::string::npos) continue;
    expect_grad_matches(p->name, p->value.f32(), size_t(p->value.numel()), p->grad.f32(), loss, 1e-2f, 2e-2, 24);
    ++checked;
  }
  // vision: patch, positions, 2 x (2 norms, q k v o, up down), norm, projector norm fc1 fc2;
  // audio: conv1 conv2, positions, 1 layer, norm, projector
  EXPECT_EQ(checked, (1 + 1 + 2 * 8 + 1 + 3) + (2 + 1 + 8 + 1 + 3));
}

TEST(runtime_encoder, MediaTokensReplaceThePlaceholderEmbeddings) {
  // Whatever ids sit at the media positions, the logits are the same: the encoder's tokens
  // are what the language model reads there. Without the media they differ.
  auto model = omni_model();
  Batch b = media_batch();
  model->forward(b);
  std::vector<float> first(model->logits().f32(), model->logits().f32() + model->logits().numel());
  Batch c = b;
  for (auto& m : c.media)
    for (int64_t p : m.positions) c.input_ids[p] = (c.input_ids[p] + 7) % 32;
  model->forward(c);
  for (size_t i = 0; i < first.size(); ++i) ASSERT_EQ(first[i], model->logits().f32()[i]) << i;
  c.media.clear();
  model->forward(c);
  double diff = 0;
  for (size_t i = 0; i < first.size(); ++i) diff += std::abs(first[i] - model->logits().f32()[i]);
  EXPECT_GT(diff, 1e-3);
}

TEST(runtime_encoder, AClipsTokensDoNotDependOnItsBatchNeighbours) {
  auto model = omni_model();
  MediaInput alone = audio_input({5}, {0, 1}, 7);
  // the same clip (the second of the batch) next to a longer one
  MediaInput both = audio_input({9, 5}, {0, 1, 2, 3, 4}, 7);
  for (int64_t t = 0; t < 5 * 5; ++t) alone.data[t] = both.data[1 * 9 * 5 + t];  // exactly the second clip
  std::vector<float> a = model->encode(alone), b = model->encode(both);
  ASSERT_EQ(a.size(), size_t(2 * 16));
  ASSERT_EQ(b.size(), size_t(5 * 16));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[3 * 16 + i], 1e-5f) << i;
}

TEST(runtime_encoder, FrozenEncoderUnderATrainedProjector) {
  auto model = omni_model();
  model->set_frozen("backbone.", true);
  model->set_frozen("lm_head.", true);
  model->set_frozen("vision_model.", true);
  model->set_frozen("audio_model.", true);
  Batch b = media_batch();
  model->zero_grad();
  model->forward_backward(b, LossOptions{}, true);
  for (Parameter* p : model->parameters()) {
    if (!p->grad.defined()) continue;
    double norm = 0;
    for (int64_t i = 0; i < p->grad.numel(); ++i) norm += std::abs(p->grad.f32()[i]);
    if (p->name.find("_projector.") != std::string::npos) EXPECT_GT(norm, 0.0) << p->name;
    else EXPECT_EQ(norm, 0.0) << p->name;
  }
}

TEST(runtime_encoder, CheckpointsCarryTheEncoders) {
  auto model = omni_model();
  Batch b = media_batch();
  model->forward(b);
  std::vector<float> before(model->logits().f32(), model->logits().f32() + model->logits().numel());
  fs::path dir = fs::temp_directory_path() / ("nemokit-omni-ckpt-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  save_pretrained(*model, dir.string());
  std::ifstream cfg(dir / "config.json");
  auto j = nlohmann::json::parse(cfg);
  EXPECT_EQ(j["vision_config"]["patch_size"], 2);
  EXPECT_EQ(j["audio_config"]["num_mel_bins"], 5);
  auto loaded = load_pretrained(dir.string());
  ASSERT_TRUE(loaded->has_encoder(Modality::vision));
  ASSERT_TRUE(loaded->has_encoder(Modality::audio));
  loaded->forward(b);
  for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(before[i], loaded->logits().f32()[i]) << i;
  fs::remove_all(dir);
}

TEST(runtime_encoder, DecodingWithEncoderTokensMatchesTheFullForward) {
  auto model = omni_model();
  Batch b = random_batch(1, 9, 32, 8);
  b.targets.clear();
  b.media.push_back(image_input(1, {2, 3, 4, 5}, 9));
  model->forward(b);
  const int64_t V = 32, d = 16;
  std::vector<float> tokens = model->encode(b.media[0]);
  SequenceCache cache = model->new_cache();
  std::vector<float> logits;
  for (int64_t t = 0; t < 9; ++t) {
    const float* e = t >= 2 && t <= 5 ? tokens.data() + (t - 2) * d : nullptr;
    model->decode_step({b.input_ids[t]}, {&cache}, logits, {0}, {e});
    for (int64_t v = 0; v < V; ++v) EXPECT_NEAR(logits[v], model->logits().f32()[t * V + v], 2e-4f) << t << " " << v;
  }
}

TEST(runtime_encoder, BadMediaInputsAreClearErrors) {
  auto model = omni_model();
  Batch b = media_batch();
  b.media[0].positions.push_back(100);
  EXPECT_THROW(model->forward(b), std::invalid_argument);
  b = media_batch();
  b.media[1].positions.pop_back();  // 5 tokens for 4 positions
  try {
    model->forward(b);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("audio encoder made 5 tokens for 4 media positions"), std::string::npos) << e.what();
  }
  NemotronH text_only(tiny_config("M*-"));
  b = media_batch();
  EXPECT_THROW(text_only.forward(b), std::invalid_argument);
  EncoderConfig bad = vision_config();
  bad.patch_size = 3;
  EXPECT_THROW(text_only.add_encoder(bad, 1), std::runtime_error);
  EXPECT_THROW(EncoderConfig::from_json({{"hidden_size", 8}, {"colour", 1}}, Modality::vision, "config.json: vision_config"),
               std::runtime_error);
}
