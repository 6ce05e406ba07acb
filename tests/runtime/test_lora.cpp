// LoRA adapters: exact gradients (with and without dropout), merging, frozen base weights,
// target matching, decoding and exact resume from a training checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "grad_check.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) { return scratch_path("runtime_lora_test", name); }

const std::vector<std::string> kAllProjections = {"in_proj", "out_proj", "q_proj", "k_proj",
                                                  "v_proj",  "o_proj",   "up_proj", "down_proj"};

bool is_adapter(const Parameter* p) { return p->name.find(".lora_") != std::string::npos; }

// B starts at zero (the adapted model equals the base); random B makes every path carry a
// gradient and the merge non-trivial.
void randomize_b(NemotronH& model, uint64_t seed, float scale) {
  Rng rng(seed);
  for (Parameter* p : model.parameters())
    if (p->name.find(".lora_B.") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = scale * rng.normal();
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

std::vector<float> logits_of(NemotronH& model, const Batch& b) {
  const Tensor& t = model.forward(b);
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

}  // namespace

TEST(runtime_lora, AddsAdaptersOnMatchingProjectionsAndFreezesTheRest) {
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(1);
  const size_t base = model.parameters().size();
  LoraConfig cfg;
  cfg.rank = 3, cfg.targets = {"up_proj"};
  model.add_lora(cfg);
  ASSERT_TRUE(model.has_lora());
  std::vector<std::string> adapted;
  for (Parameter* p : model.parameters()) {
    if (!is_adapter(p)) {
      EXPECT_FALSE(p->trainable) << p->name;
      EXPECT_FALSE(p->grad.defined()) << p->name << " keeps a gradient buffer while frozen";
      continue;
    }
    EXPECT_TRUE(p->trainable && p->grad.defined()) << p->name;
    if (p->name.find(".lora_A.") != std::string::npos) adapted.push_back(p->name);
  }
  // "up_proj" reaches the MLP layer, every routed expert and the shared expert.
  std::vector<std::string> expect = {"backbone.layers.1.mixer.experts.0.up_proj.lora_A.weight",
                                     "backbone.layers.1.mixer.experts.1.up_proj.lora_A.weight",
                                     "backbone.layers.1.mixer.experts.2.up_proj.lora_A.weight",
                                     "backbone.layers.1.mixer.experts.3.up_proj.lora_A.weight",
                                     "backbone.layers.1.mixer.shared_experts.up_proj.lora_A.weight",
                                     "backbone.layers.3.mixer.up_proj.lora_A.weight"};
  EXPECT_EQ(adapted, expect);
  EXPECT_EQ(model.parameters().size(), base + 2 * expect.size());
  Parameter* A = model.find("backbone.layers.3.mixer.up_proj.lora_A.weight");
  Parameter* B = model.find("backbone.layers.3.mixer.up_proj.lora_B.weight");
  ASSERT_TRUE(A && B);
  EXPECT_EQ(A->value.shape(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(B->value.shape(), (std::vector<int64_t>{24, 3}));
  // PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) and not all zero, B = 0.
  float amax = 0;
  for (int64_t i = 0; i < A->value.numel(); ++i) amax = std::max(amax, std::fabs(A->value.f32()[i]));
  EXPECT_GT(amax, 0.05f);
  EXPECT_LE(amax, 0.25f);
  for (int64_t i = 0; i < B->value.numel(); ++i) ASSERT_EQ(B->value.f32()[i], 0.0f);

  NemotronH narrow(tiny_config("ME*-"));
  cfg.targets = {"mixer.up_proj"};  // only the MLP layer's own projection
  narrow.add_lora(cfg);
  int n = 0;
  for (Parameter* p : narrow.parameters()) n += is_adapter(p);
  EXPECT_EQ(n, 2);
}

TEST(runtime_lora, UnknownTargetIsAnErrorListingTheProjections) {
  NemotronH model(tiny_config("ME*-"));
  LoraConfig cfg;
  cfg.targets = {"q_proj", "gate_proj"};
  try {
    model.add_lora(cfg);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'gate_proj'"), std::string::npos) << msg;
    for (const char* name : {"in_proj", "out_proj", "q_proj", "o_proj", "up_proj", "down_proj"})
      EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
  EXPECT_FALSE(model.has_lora());
  cfg.targets = {"q_proj"}, cfg.rank = 0;
  EXPECT_THROW(model.add_lora(cfg), std::invalid_argument);
}

TEST(runtime_lora, AdapterGradientsMatchFiniteDifferences) {
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(21);
  LoraConfig cfg;
  cfg.rank = 2, cfg.alpha = 6, cfg.targets = kAllProjections, cfg.seed = 5;
  model.add_lora(cfg);
  randomize_b(model, 9, 0.3f);
  Batch batch = random_batch(2, 8, 32, 17);
  LossOptions opts;
  opts.mean = false;
  model.zero_grad();
  model.forward_backward(batch, opts, true);
  auto loss = [&] { return model.forward_backward(batch, opts, false).loss_sum; };
  int checked = 0;
  for (Parameter* p : model.parameters()) {
    if (!is_adapter(p)) continue;
    std::vector<float> analytic(p->grad.f32(), p->grad.f32() + p->grad.numel());
    expect_grad_matches(p->name, p->value.f32(), size_t(p->value.numel()), analytic.data(), loss, 2e-3f, 3e-2, 8);
    ++checked;
  }
  EXPECT_EQ(checked, 2 * (2 + 4 + 4 * 2 + 2 + 2));  // Mamba, attention, 4 experts, shared expert, MLP
}

TEST(runtime_lora, DropoutIsRepeatableAndItsGradientsAreExact) {
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(22);
  LoraConfig cfg;
  cfg.rank = 2, cfg.dropout = 0.3f, cfg.targets = kAllProjections, cfg.seed = 8;
  model.add_lora(cfg);
  randomize_b(model, 10, 0.3f);
  Batch batch = random_batch(1, 8, 32, 18);
  LossOptions opts;
  opts.mean = false;
  const double eval = model.forward_backward(batch, opts, false).loss_sum;  // no dropout
  EXPECT_EQ(model.lora_dropout_counter(), 0u);
  model.zero_grad();
  const double first = model.forward_backward(batch, opts, true).loss_sum;
  EXPECT_EQ(model.lora_dropout_counter(), 1u);
  const double second = model.forward_backward(batch, opts, true).loss_sum;
  EXPECT_NE(first, eval) << "dropout changed nothing";
  EXPECT_NE(first, second) << "two training forwards drew the same masks";
  model.restore_lora_dropout(8, 0);
  EXPECT_EQ(model.forward_backward(batch, opts, true).loss_sum, first) << "same seed and counter, other masks";

  const std::vector<std::string> names = {
      "backbone.layers.0.mixer.in_proj.lora_A.weight", "backbone.layers.2.mixer.q_proj.lora_A.weight",
      "backbone.layers.1.mixer.shared_experts.down_proj.lora_A.weight", "backbone.layers.3.mixer.up_proj.lora_B.weight"};
  model.restore_lora_dropout(8, 0);
  model.zero_grad();
  model.forward_backward(batch, opts, true);
  std::vector<std::vector<float>> analytic;
  for (const auto& name : names) {
    Parameter* p = model.find(name);
    ASSERT_NE(p, nullptr) << name;
    analytic.emplace_back(p->grad.f32(), p->grad.f32() + p->grad.numel());
  }
  // Each evaluation replays the same masks (counter 0); its backward only adds to the
  // gradients, which were copied above.
  auto loss = [&] {
    model.restore_lora_dropout(8, 0);
    return model.forward_backward(batch, opts, true).loss_sum;
  };
  // A step of 1e-3 stays clear of the top-k routing switches near these weights.
  for (size_t i = 0; i < names.size(); ++i) {
    Parameter* p = model.find(names[i]);
    expect_grad_matches(names[i], p->value.f32(), size_t(p->value.numel()), analytic[i].data(), loss, 1e-3f, 3e-2, 8);
  }
}

TEST(runtime_lora, MergedModelMatchesTheAdaptedModel) {
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(23);
  LoraConfig cfg;
  cfg.rank = 4, cfg.alpha = 8, cfg.dropout = 0.2f, cfg.targets = kAllProjections;
  model.add_lora(cfg);
  randomize_b(model, 11, 0.2f);
  Batch batch = random_batch(2, 9, 32, 19);
  std::vector<float> base_plus_adapter = logits_of(model, batch);

  // decode_step runs the adapters too: its last logits equal the full forward's.
  std::vector<int32_t> prompt(batch.input_ids.begin(), batch.input_ids.begin() + 9);
  SequenceCache cache = model.new_cache();
  std::vector<float> step_logits;
  for (int32_t t : prompt) model.decode_step({t}, {&cache}, step_logits);
  const double decode_diff = max_abs_diff(step_logits.data(), base_plus_adapter.data() + 8 * 32, 32);
  EXPECT_LT(decode_diff, 1e-4);

  const int64_t n = int64_t(base_plus_adapter.size());
  model.merge_lora();
  EXPECT_FALSE(model.has_lora());
  for (Parameter* p : model.parameters()) {
    EXPECT_FALSE(is_adapter(p)) << p->name;
    EXPECT_EQ(p->trainable, !p->buffer) << p->name;
    if (!p->buffer) EXPECT_TRUE(p->grad.defined()) << p->name;
  }
  std::vector<float> merged = logits_of(model, batch);
  const double diff = max_abs_diff(merged.data(), base_plus_adapter.data(), n);
  std::cout << "[ lora     ] merged vs base+adapter logits: max abs diff " << diff << "\n";
  EXPECT_LT(diff, 1e-5);
  // The adapters mattered: the base model alone is far from both.
  NemotronH base(tiny_config("ME*-"));
  base.init_weights(23);
  EXPECT_GT(max_abs_diff(logits_of(base, batch).data(), merged.data(), n), 1e-2);
}

TEST(runtime_lora, TrainingMovesOnlyTheAdapters) {
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(24);
  NemotronH reference(tiny_config("ME*-"));
  reference.init_weights(24);
  LoraConfig cfg;
  cfg.rank = 2, cfg.targets = kAllProjections;
  model.add_lora(cfg);
  std::vector<std::vector<float>> before;
  for (Parameter* p : model.parameters()) before.emplace_back(p->value.f32(), p->value.f32() + p->value.numel());
  AdamW opt(model.parameters(), AdamWConfig{});
  TrainOptions to;
  to.expert_bias_rate = 0;  // the router bias is a buffer the trainer moves on purpose
  float first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    TrainStepStats s = train_step(model, opt, 1e-2f, {random_batch(2, 8, 32, 40)}, to);
    (step == 0 ? first : last) = s.loss;
  }
  EXPECT_LT(last, first);
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const Parameter* p = params[i];
    bool same = std::equal(before[i].begin(), before[i].end(), p->value.f32());
    if (is_adapter(p))
      EXPECT_FALSE(same) << p->name << " did not move";
    else
      EXPECT_TRUE(same) << p->name << " is frozen but changed";
  }
  // Only adapters carry optimizer moments.
  for (const auto& [name, t] : opt.state_tensors()) EXPECT_NE(name.find(".lora_"), std::string::npos) << name;
}

TEST(runtime_lora, TrainingCheckpointResumesExactly) {
  const std::string dir = scratch("resume_ckpt");
  LoraConfig cfg;
  cfg.rank = 2, cfg.alpha = 4, cfg.dropout = 0.1f, cfg.seed = 77, cfg.targets = {"in_proj", "q_proj", "v_proj", "up_proj"};
  cfg.base_model = "nvidia/tiny-test";
  std::vector<Batch> data;
  for (uint32_t i = 0; i < 4; ++i) data.push_back(random_batch(2, 8, 32, 60 + i));
  TrainOptions to;

  NemotronH a(tiny_config("ME*-"));
  a.init_weights(25);
  a.add_lora(cfg);
  AdamW opt_a(a.parameters(), AdamWConfig{});
  for (int s = 0; s < 2; ++s) train_step(a, opt_a, 5e-3f, {data[s]}, to);
  TrainerState st;
  st.step = 2;
  save_training_checkpoint(dir, a, opt_a, st);
  std::vector<float> expect;
  for (int s = 2; s < 4; ++s) expect.push_back(train_step(a, opt_a, 5e-3f, {data[s]}, to).loss);

  ASSERT_TRUE(fs::exists(dir + "/adapter_config.json"));
  auto read = read_adapter_config(dir);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->rank, 2);
  EXPECT_EQ(read->alpha, 4.0f);
  EXPECT_EQ(read->targets, cfg.targets);
  EXPECT_EQ(read->base_model, "nvidia/tiny-test");
  std::ifstream in(dir + "/adapter_config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["r"], 2);
  EXPECT_EQ(j["lora_alpha"], 4);
  EXPECT_NEAR(j["lora_dropout"].get<double>(), 0.1, 1e-7);

  auto b = load_pretrained(dir);  // rebuilds the adapters from adapter_config.json
  ASSERT_TRUE(b->has_lora());
  AdamW opt_b(b->parameters(), AdamWConfig{});
  TrainerState got = load_training_checkpoint(dir, *b, opt_b);
  EXPECT_EQ(got.step, 2);
  EXPECT_EQ(b->lora_config().seed, 77u);
  EXPECT_EQ(b->lora_dropout_counter(), a.lora_dropout_counter() - 2);
  for (int s = 2; s < 4; ++s) EXPECT_EQ(train_step(*b, opt_b, 5e-3f, {data[s]}, to).loss, expect[s - 2]) << "step " << s;

  // A model without adapters cannot take a LoRA checkpoint, and the message says why.
  NemotronH plain(tiny_config("ME*-"));
  AdamW opt_p(plain.parameters(), AdamWConfig{});
  try {
    load_training_checkpoint(dir, plain, opt_p);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("adapter_config.json"), std::string::npos) << e.what();
  }
}

TEST(runtime_lora, SavedLoraModelReloadsWithTheSameOutputs) {
  const std::string dir = scratch("pretrained_lora");
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(26);
  LoraConfig cfg;
  cfg.rank = 3, cfg.targets = {"o_proj", "down_proj", "in_proj"};
  model.add_lora(cfg);
  randomize_b(model, 12, 0.2f);
  save_pretrained(model, dir);
  auto back = load_pretrained(dir);
  ASSERT_TRUE(back->has_lora());
  Batch batch = random_batch(1, 7, 32, 20);
  std::vector<float> x = logits_of(model, batch), y = logits_of(*back, batch);
  EXPECT_EQ(x, y);
}
