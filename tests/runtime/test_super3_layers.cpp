// Nemotron 3 Super's layers: LatentMoE (experts between fc1_latent_proj and fc2_latent_proj)
// and multi-token prediction (mtp.layers.*), each parameter's gradient against finite
// differences, the MTP targets' alignment, the config keys, and a checkpoint that keeps both
// (and that transformers reads: check_latent_moe.py, registered beside this test).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "grad_check.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/safetensors.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;

namespace {

NemotronHConfig super3_tiny(const char* pattern, int64_t mtp_depths) {
  NemotronHConfig c = tiny_config(pattern);
  c.moe_latent_size = 6;  // narrower than hidden (16): a wrong width cannot go unnoticed
  c.num_nextn_predict_layers = mtp_depths;
  c.mtp_pattern = "*E";
  return c;
}

// Every trainable parameter's gradient against central differences of the loss, summed in
// double (StepResult::loss is a float: too coarse for differences of a summed loss).
int check_every_parameter(NemotronH& model, const Batch& batch, const LossOptions& opts) {
  model.zero_grad();
  model.forward_backward(batch, opts, true);
  auto loss = [&] {
    StepResult r = model.forward_backward(batch, opts, false);
    return r.loss_sum + r.aux_loss + r.mtp_loss;
  };
  int checked = 0;
  for (Parameter* p : model.parameters()) {
    if (p->buffer) continue;
    std::vector<float> analytic(p->grad.f32(), p->grad.f32() + p->grad.numel());
    expect_grad_matches(p->name, p->value.f32(), size_t(p->value.numel()), analytic.data(), loss, 2e-3f, 3e-2, 10);
    ++checked;
  }
  return checked;
}

}  // namespace

TEST(runtime_super3_layers, LatentMoeHasTheReferenceNamesAndShapes) {
  NemotronH model(super3_tiny("E", 0));
  auto shape = [&](const char* name) {
    Parameter* p = model.find(name);
    return p ? p->value.shape() : std::vector<int64_t>{};
  };
  EXPECT_EQ(shape("backbone.layers.0.mixer.fc1_latent_proj.weight"), (std::vector<int64_t>{6, 16}));
  EXPECT_EQ(shape("backbone.layers.0.mixer.fc2_latent_proj.weight"), (std::vector<int64_t>{16, 6}));
  EXPECT_EQ(shape("backbone.layers.0.mixer.experts.3.up_proj.weight"), (std::vector<int64_t>{8, 6}));
  EXPECT_EQ(shape("backbone.layers.0.mixer.experts.3.down_proj.weight"), (std::vector<int64_t>{6, 8}));
  // The router and the shared expert stay at the hidden width.
  EXPECT_EQ(shape("backbone.layers.0.mixer.gate.weight"), (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(shape("backbone.layers.0.mixer.shared_experts.up_proj.weight"), (std::vector<int64_t>{12, 16}));
}

TEST(runtime_super3_layers, LatentMoeGradientsMatchFiniteDifferences) {
  NemotronH model(super3_tiny("E-E", 0));
  model.init_weights(5);
  Batch batch = random_batch(2, 6, 32, 7);
  LossOptions opts;
  opts.mean = false;  // summed loss: larger differences relative to float rounding
  opts.moe_aux_loss_coeff = 0.1f;
  EXPECT_GT(check_every_parameter(model, batch, opts), 12);
}

TEST(runtime_super3_layers, MtpLayersHaveTheReferenceNames) {
  NemotronH model(super3_tiny("M*E", 2));
  // Depth k's layers are mtp.layers.{(k-1)*2 + j} for the pattern "*E".
  for (const char* name :
       {"mtp.layers.0.enorm.weight", "mtp.layers.0.hnorm.weight", "mtp.layers.0.eh_proj.weight",
        "mtp.layers.0.norm.weight", "mtp.layers.0.mixer.q_proj.weight", "mtp.layers.1.norm.weight",
        "mtp.layers.1.mixer.gate.weight", "mtp.layers.1.mixer.fc1_latent_proj.weight",
        "mtp.layers.1.mixer.experts.0.up_proj.weight", "mtp.layers.1.final_layernorm.weight",
        "mtp.layers.2.eh_proj.weight", "mtp.layers.3.final_layernorm.weight"})
    EXPECT_NE(model.find(name), nullptr) << name;
  EXPECT_EQ(model.find("mtp.layers.0.eh_proj.weight")->value.shape(), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(model.find("mtp.layers.1.enorm.weight"), nullptr);  // only the first layer of a depth fuses
  EXPECT_EQ(model.find("mtp.layers.0.final_layernorm.weight"), nullptr);
}

TEST(runtime_super3_layers, MtpGradientsMatchFiniteDifferences) {
  NemotronH model(super3_tiny("*E", 2));  // Mamba's gradients are runtime_model_test's
  model.init_weights(4);
  Batch batch = random_batch(2, 7, 32, 3);
  batch.set_documents({{0, 4, 7}, {0, 7}});  // a document start inside a row: targets do not cross it
  batch.targets[5] = -100;
  LossOptions opts;
  opts.mean = false;
  opts.mtp_loss_scale = 0.7f;  // well above float rounding in the MTP layers' gradients
  StepResult r = model.forward_backward(batch, opts, false);
  EXPECT_GT(r.mtp_loss, 0.0f);
  EXPECT_NEAR(r.loss, r.loss_sum + r.aux_loss + r.mtp_loss, 1e-4 * r.loss);
  EXPECT_GT(check_every_parameter(model, batch, opts), 40);
}

TEST(runtime_super3_layers, MtpPredictsTheTokenDepthPlusOneAhead) {
  NemotronH model(super3_tiny("*E", 1));
  model.init_weights(2);
  Batch batch = random_batch(1, 6, 32, 4);
  // Only the first target (x_1, predicted at position 0) is in the loss: depth 1 predicts
  // x_{t+2} at position t, so no position has x_1 as its MTP target.
  for (size_t i = 1; i < batch.targets.size(); ++i) batch.targets[i] = -100;
  StepResult r = model.forward_backward(batch, LossOptions{}, false);
  EXPECT_GT(r.loss_sum, 0.0);
  EXPECT_EQ(r.mtp_loss, 0.0);
  // The last target (x_6) is depth 1's target at position 4: mean loss there, times the scale.
  for (auto& t : batch.targets) t = -100;
  batch.targets[5] = 3;
  LossOptions opts;
  opts.mtp_loss_scale = 1.0f;
  r = model.forward_backward(batch, opts, false);
  EXPECT_GT(r.mtp_loss, 0.0f);
  opts.mtp_loss_scale = 0.5f;
  EXPECT_NEAR(model.forward_backward(batch, opts, false).mtp_loss, 0.5 * r.mtp_loss, 1e-6);
}

TEST(runtime_super3_layers, ConfigKeysRoundTripAndBadValuesNameTheKey) {
  NemotronHConfig c = super3_tiny("M*E", 1);
  nlohmann::json j = c.to_json();
  EXPECT_EQ(j["moe_latent_size"], 6);
  EXPECT_EQ(j["num_nextn_predict_layers"], 1);
  EXPECT_EQ(j["mtp_hybrid_override_pattern"], "*E");
  NemotronHConfig back = NemotronHConfig::from_json(j, "config.json");
  EXPECT_EQ(back.moe_latent_size, 6);
  EXPECT_EQ(back.mtp_pattern, "*E");
  // transformers 5 writes the MTP layers as a list; null latent size means no projection.
  j.erase("mtp_hybrid_override_pattern");
  j["mtp_layers_block_type"] = nlohmann::json::array({"attention", "moe", "mlp"});
  j["moe_latent_size"] = nullptr;
  back = NemotronHConfig::from_json(j, "config.json");
  EXPECT_EQ(back.mtp_pattern, "*E-");
  EXPECT_EQ(back.moe_latent_size, 0);
  EXPECT_FALSE(NemotronHConfig::from_json(tiny_config().to_json(), "x").to_json().contains("mtp_hybrid_override_pattern"));

  auto error_of = [](nlohmann::json cfg) {
    try {
      NemotronHConfig::from_recipe_table(cfg, "config [model]");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  nlohmann::json bad = c.to_json();
  bad["mtp_hybrid_override_pattern"] = "M*";
  EXPECT_NE(error_of(bad).find("key 'mtp_hybrid_override_pattern': unknown MTP layer letter 'M'"), std::string::npos)
      << error_of(bad);
  bad = c.to_json();
  bad["moe_latent_size"] = -4;
  EXPECT_NE(error_of(bad).find("key 'moe_latent_size'"), std::string::npos) << error_of(bad);
  bad = c.to_json();
  bad["num_nextn_predict_layers"] = -1;
  EXPECT_NE(error_of(bad).find("key 'num_nextn_predict_layers'"), std::string::npos) << error_of(bad);
}

// Saved and loaded, the model gives the same logits and MTP loss. The folder, with the logits
// beside it, is what check_latent_moe.py loads in transformers (NEMOKIT_SUPER3_DIR).
TEST(runtime_super3_layers, CheckpointKeepsLatentMoeAndMtp) {
  NemotronH model(super3_tiny("M*E-E", 1));
  model.init_weights(17);
  Batch batch = random_batch(1, 9, 32, 12);
  StepResult r = model.forward_backward(batch, LossOptions{}, false);
  const Tensor logits = model.logits().clone();
  const char* where = std::getenv("NEMOKIT_SUPER3_DIR");
  const std::string dir = where ? where : scratch_path("runtime_super3_layers", "ckpt");
  save_pretrained(model, dir);
  auto again = load_pretrained(dir);
  EXPECT_EQ(again->config().moe_latent_size, 6);
  EXPECT_EQ(again->config().num_nextn_predict_layers, 1);
  StepResult r2 = again->forward_backward(batch, LossOptions{}, false);
  EXPECT_EQ(r2.loss, r.loss);
  EXPECT_EQ(r2.mtp_loss, r.mtp_loss);
  Tensor ids = Tensor::empty({1, batch.seq}, DType::i64);
  for (int64_t i = 0; i < batch.seq; ++i) ids.data<int64_t>()[i] = batch.input_ids[i];
  write_safetensors(dir + "/reference.safetensors", {{"input_ids", ids}, {"logits", logits}});
}
