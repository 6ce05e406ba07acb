// Whole-model checks: gradients of every parameter against finite differences, packed
// documents against the same documents run alone, and incremental decoding against the
// full forward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "grad_check.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/model.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;

TEST(runtime_model, EveryParameterGradientMatchesFiniteDifferences) {
  NemotronH model(tiny_config());
  model.init_weights(11);
  // Time steps near 0.7 instead of the initial 1e-3..0.1, so A_log and dt_bias carry
  // gradients well above float rounding.
  for (Parameter* p : model.parameters())
    if (p->name.find("dt_bias") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = 0.1f * float(i);
  Batch batch = random_batch(2, 10, 32, 5);
  batch.targets[3] = -100;
  LossOptions opts;
  opts.mean = false;  // summed loss: larger differences relative to float rounding
  model.zero_grad();
  model.forward_backward(batch, opts, true);
  auto loss = [&] { return model.forward_backward(batch, opts, false).loss_sum; };
  int checked = 0;
  for (Parameter* p : model.parameters()) {
    if (p->buffer) continue;
    std::vector<float> analytic(p->grad.f32(), p->grad.f32() + p->grad.numel());
    // A_log and dt_bias move the loss little at these time steps; a wider step lifts their
    // differences above float rounding (the loss is smooth in them).
    bool log_scale = p->name.find("A_log") != std::string::npos || p->name.find("dt_bias") != std::string::npos;
    expect_grad_matches(p->name, p->value.f32(), size_t(p->value.numel()), analytic.data(), loss,
                        log_scale ? 1e-2f : 2e-3f, 3e-2, 12);
    ++checked;
  }
  EXPECT_GT(checked, 30);
}

TEST(runtime_model, MoeAuxLossGradientMatchesFiniteDifferences) {
  NemotronH model(tiny_config("E"));
  model.init_weights(3);
  Batch batch = random_batch(1, 12, 32, 9);
  LossOptions opts;
  opts.moe_aux_loss_coeff = 0.5f;
  model.zero_grad();
  StepResult r = model.forward_backward(batch, opts, true);
  EXPECT_GT(r.aux_loss, 0.0f);
  auto loss = [&] { return double(model.forward_backward(batch, opts, true).loss); };
  Parameter* gate = model.find("backbone.layers.0.mixer.gate.weight");
  ASSERT_NE(gate, nullptr);
  std::vector<float> analytic(gate->grad.f32(), gate->grad.f32() + gate->grad.numel());
  // forward_backward(..., true) inside `loss` keeps adding into grads; the copy above is the one used.
  expect_grad_matches("gate with aux loss", gate->value.f32(), size_t(gate->value.numel()), analytic.data(), loss,
                      2e-3f, 3e-2, 24);
}

TEST(runtime_model, PackedDocumentsMatchDocumentsRunAlone) {
  NemotronH model(tiny_config("M*E-M"));
  model.init_weights(21);
  const std::vector<int64_t> lengths = {5, 4, 6};  // chunk_size 4: starts fall inside chunks
  Batch packed;
  packed.batch = 1, packed.seq = 15;
  std::vector<Batch> alone;
  std::mt19937 gen(77);
  std::uniform_int_distribution<int32_t> tok(0, 31);
  for (int64_t len : lengths) {
    Batch b;
    b.batch = 1, b.seq = len;
    for (int64_t t = 0; t < len; ++t) b.input_ids.push_back(tok(gen));
    for (int64_t t = 0; t < len; ++t) b.targets.push_back(t + 1 < len ? b.input_ids[t + 1] : -100);
    packed.input_ids.insert(packed.input_ids.end(), b.input_ids.begin(), b.input_ids.end());
    packed.targets.insert(packed.targets.end(), b.targets.begin(), b.targets.end());
    alone.push_back(b);
  }
  packed.set_documents({{0, 5, 9, 15}});
  LossOptions sum;
  sum.mean = false;

  model.zero_grad();
  for (auto& b : alone) model.forward_backward(b, sum, true);
  std::vector<std::vector<float>> separate_grads;
  for (Parameter* p : model.parameters())
    if (!p->buffer) separate_grads.emplace_back(p->grad.f32(), p->grad.f32() + p->grad.numel());
  std::vector<float> separate_losses;
  for (auto& b : alone) {
    model.forward_backward(b, sum, false);
    separate_losses.insert(separate_losses.end(), model.token_losses().begin(), model.token_losses().end());
  }

  model.zero_grad();
  model.forward_backward(packed, sum, true);
  std::vector<float> packed_losses = model.token_losses();
  ASSERT_EQ(packed_losses.size(), separate_losses.size());
  for (size_t i = 0; i < packed_losses.size(); ++i)
    EXPECT_NEAR(packed_losses[i], separate_losses[i], 1e-5 * (1 + separate_losses[i])) << "position " << i;
  size_t k = 0;
  for (Parameter* p : model.parameters()) {
    if (p->buffer) continue;
    const auto& ref = separate_grads[k++];
    double diff = 0, norm = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      diff += std::pow(double(p->grad.f32()[i]) - ref[i], 2);
      norm += double(ref[i]) * ref[i];
    }
    EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-7) << p->name;
  }

  // Without document boundaries the packed row must differ (the check above is not vacuous).
  Batch unmarked = packed;
  unmarked.doc_ids.clear();
  model.forward_backward(unmarked, sum, false);
  EXPECT_GT(std::fabs(model.token_losses()[7] - separate_losses[7]), 1e-4);
}

TEST(runtime_model, IncrementalDecodingMatchesFullForward) {
  NemotronH model(tiny_config("M*E-M*"));
  model.init_weights(8);
  const int64_t T = 11;  // several scan chunks
  std::vector<Batch> prompts = {random_batch(1, T, 32, 1), random_batch(1, T - 4, 32, 2)};
  std::vector<std::vector<float>> full;
  for (auto& p : prompts) {
    p.targets.clear();
    const Tensor& logits = model.forward(p);
    full.emplace_back(logits.f32(), logits.f32() + logits.numel());
  }
  // Batched decoding of both sequences; the shorter one drops out when its prompt ends.
  std::vector<SequenceCache> caches = {model.new_cache(), model.new_cache()};
  const int64_t V = 32;
  double worst = 0;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> tokens;
    std::vector<SequenceCache*> active;
    std::vector<size_t> which;
    for (size_t i = 0; i < prompts.size(); ++i)
      if (t < prompts[i].seq) {
        tokens.push_back(prompts[i].input_ids[t]);
        active.push_back(&caches[i]);
        which.push_back(i);
      }
    std::vector<float> logits;
    model.decode_step(tokens, active, logits);
    for (size_t j = 0; j < which.size(); ++j)
      for (int64_t v = 0; v < V; ++v) {
        double ref = full[which[j]][t * V + v];
        worst = std::max(worst, std::fabs(logits[j * V + v] - ref) / (1 + std::fabs(ref)));
      }
  }
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(caches[0].length, T);
  EXPECT_EQ(caches[1].length, T - 4);
}

TEST(runtime_model, ConfigErrorsNameTheKey) {
  NemotronHConfig c = tiny_config("MX");
  try {
    NemotronH model(c);
    FAIL() << "bad pattern accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("hybrid_override_pattern"), std::string::npos) << e.what();
  }
  nlohmann::json j = tiny_config().to_json();
  j["n_groups"] = 3;
  try {
    NemotronHConfig::from_json(j, "cfg.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json: key 'n_groups'"), std::string::npos) << e.what();
  }
  auto round = NemotronHConfig::from_json(tiny_config().to_json(), "x");
  EXPECT_EQ(round.pattern, "M*E-M");
  EXPECT_EQ(round.moe_shared_expert_intermediate_size, 12);
}

// Sizes are checked before the model is built: 4,000,012 experts used to end in std::bad_alloc
// while the model was made, before its checkpoint was even looked at. Reading such a config is
// not an error (a login node plans jobs for models larger than itself).
TEST(runtime_model, ConfigTooBigForMemoryNamesTheKey) {
  nlohmann::json j = tiny_config().to_json();
  j["n_routed_experts"] = 4000012;
  j["moe_intermediate_size"] = 1 << 20;
  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_model_test" / "huge_config";
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << j.dump();
  try {
    load_pretrained(dir.string());
    FAIL() << "a config far beyond memory was accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((dir / "config.json").string() + ": key 'n_routed_experts': 4000012 makes a model of"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("more than this machine's"), std::string::npos) << msg;
  }
  nlohmann::json wide = tiny_config().to_json();
  wide["vocab_size"] = int64_t(1) << 40;
  const NemotronHConfig read = NemotronHConfig::from_json(wide, "cfg.json");
  try {
    NemotronH model(read);
    FAIL() << "a vocabulary far beyond memory was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("model config: key 'vocab_size'"), std::string::npos) << e.what();
  }
}

TEST(runtime_model, RecipeModelTableRefusesKeysNoConfigHas) {
  // A config.json keeps keys of other tools (round trip); a recipe's [model] table is written by
  // hand, and a misspelt key must not train a model with the default in its place.
  nlohmann::json table = tiny_config().to_json();
  table["hiden_size"] = 64;
  EXPECT_EQ(NemotronHConfig::from_json(table, "config.json").extra["hiden_size"], 64);
  try {
    NemotronHConfig::from_recipe_table(table, "config [model]");
    FAIL() << "a misspelt key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("config [model]: key 'hiden_size': unknown key"), std::string::npos) << e.what();
  }
  // transformers' own NemotronH keys are config keys, read by this runtime or not.
  table.erase("hiden_size");
  table["max_position_embeddings"] = 4096;
  table["layers_block_type"] = nlohmann::json::array({"mamba", "attention", "moe", "mlp", "mamba"});
  EXPECT_EQ(NemotronHConfig::from_recipe_table(table, "config [model]").hidden_size, 16);
}
