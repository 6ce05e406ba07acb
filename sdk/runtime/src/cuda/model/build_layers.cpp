#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "model_impl.hpp"

namespace nemokit::rt::cuda {

void check_supported(NemotronH& model) {
  const NemotronHConfig& c = model.config();
  auto refuse = [](const std::string& what) {
    throw std::invalid_argument("GpuNemotronH: " + what + " is not supported on the GPU yet");
  };
  if (model.has_lora()) {
    const LoraConfig& lora = model.lora_config();
    if (lora.dropout > 0) refuse("LoRA dropout (lora.dropout " + std::to_string(lora.dropout) + ")");
    // The routed experts run as grouped products over stacked weights, and the router's
    // logits are fp32: adapters there have no path on the GPU.
    for (Parameter* p : model.parameters())
      if (p->name.find(".lora_A.") != std::string::npos &&
          (p->name.find(".experts.") != std::string::npos || p->name.find(".gate.lora_A.") != std::string::npos))
        refuse("LoRA on a routed expert or a router (" + p->name + ")");
  }
  if (c.moe_latent_size > 0) refuse("LatentMoE (moe_latent_size " + std::to_string(c.moe_latent_size) + ")");
  if (c.num_nextn_predict_layers > 0) refuse("multi-token prediction (num_nextn_predict_layers)");
  for (const char* key : {"vision_config", "audio_config"})
    if (c.extra.contains(key)) refuse(std::string("an omni encoder (") + key + ")");
  if (model.expert_parallel() > 1) refuse("expert parallel");
  if (c.mlp_hidden_act != "relu2") refuse("mlp_hidden_act \"" + c.mlp_hidden_act + "\" (only relu2)");
  if (c.pattern.find('M') != std::string::npos && c.ssm_state_size == 0) refuse("Mamba without a state (ssm_state_size 0)");
  const int64_t hd = c.head_dim;
  if (c.pattern.find('*') != std::string::npos && hd != 8 && hd != 16 && hd != 32 && hd != 64 && hd != 128)
    refuse("head_dim " + std::to_string(hd) + " (the attention kernel takes 8, 16, 32, 64 or 128)");
}

namespace {

// The LoRA adapter of the projection `module` (<module>.lora_A/B.weight, NemotronH::add_lora), or
// none (rank 0).
LoraWeights take_lora(ParamStore& p, const std::string& module) {
  LoraWeights l;
  const std::string a = module + ".lora_A.weight", b = module + ".lora_B.weight";
  Parameter* A = p.model().find(a);
  if (!A) return l;
  l.A = p.take(a), l.B = p.take(b);
  l.dA = p.grad(a), l.dB = p.grad(b);
  l.rank = A->value.size(0);
  l.scale = p.model().lora_config().scale();
  return l;
}

std::unique_ptr<GpuMixer> build_mamba2(ParamStore& p, const NemotronHConfig& c, const std::string& m) {
  Mamba2Dims dims{c.hidden_size, c.mamba_num_heads, c.mamba_head_dim, c.n_groups, c.ssm_state_size,
                  c.conv_kernel, c.chunk_size, c.layer_norm_epsilon, c.time_step_min};
  Mamba2Weights w{};
  Mamba2Grads g{};
  auto take = [&](const char* name, const bf16*& weight, float*& grad) {
    weight = p.take(m + name);
    grad = p.grad(m + name);
  };
  take("in_proj.weight", w.in_proj, g.in_proj);
  take("conv1d.weight", w.conv_w, g.conv_w);
  if (c.use_conv_bias) take("conv1d.bias", w.conv_b, g.conv_b);
  take("A_log", w.A_log, g.A_log);
  take("D", w.D, g.D);
  take("dt_bias", w.dt_bias, g.dt_bias);
  take("norm.weight", w.norm, g.norm);
  take("out_proj.weight", w.out_proj, g.out_proj);
  w.lora_in_proj = take_lora(p, m + "in_proj");
  w.lora_out_proj = take_lora(p, m + "out_proj");
  return make_gpu_mamba2(dims, w, g);
}

std::unique_ptr<GpuMixer> build_attention(ParamStore& p, const NemotronHConfig& c, const std::string& m) {
  AttentionDims dims{c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim};
  AttentionWeights w{p.take(m + "q_proj.weight"), p.take(m + "k_proj.weight"), p.take(m + "v_proj.weight"),
                     p.take(m + "o_proj.weight"), take_lora(p, m + "q_proj"), take_lora(p, m + "k_proj"),
                     take_lora(p, m + "v_proj"), take_lora(p, m + "o_proj")};
  AttentionGrads g{p.grad(m + "q_proj.weight"), p.grad(m + "k_proj.weight"), p.grad(m + "v_proj.weight"),
                   p.grad(m + "o_proj.weight")};
  return make_gpu_attention(dims, w, g);
}

std::pair<MlpWeights, MlpGrads> take_mlp(ParamStore& p, const std::string& m) {
  MlpWeights w{p.take(m + "up_proj.weight"), p.take(m + "down_proj.weight"), take_lora(p, m + "up_proj"),
               take_lora(p, m + "down_proj")};
  return {w, MlpGrads{p.grad(m + "up_proj.weight"), p.grad(m + "down_proj.weight")}};
}

std::unique_ptr<GpuMixer> build_moe(ParamStore& p, const NemotronHConfig& c, const std::string& m) {
  MoeDims dims{c.hidden_size, c.n_routed_experts, c.num_experts_per_tok, c.moe_intermediate_size,
               c.moe_shared_expert_intermediate_size, c.routed_scaling_factor, c.norm_topk_prob};
  MoeWeights w{};
  MoeGrads g{};
  w.gate = p.take(m + "gate.weight");
  g.gate = p.grad(m + "gate.weight");
  w.score_bias = p.take_f32(m + "gate.e_score_correction_bias");
  std::vector<std::string> up, down;
  for (int64_t e = 0; e < c.n_routed_experts; ++e) {
    up.push_back(m + "experts." + std::to_string(e) + ".up_proj.weight");
    down.push_back(m + "experts." + std::to_string(e) + ".down_proj.weight");
  }
  w.up = p.take_stacked(up);
  w.down = p.take_stacked(down);
  g.up = p.grad(up[0]);  // the stacked blocks' gradients
  g.down = p.grad(down[0]);
  if (dims.shared_inner > 0) std::tie(w.shared, g.shared) = take_mlp(p, m + "shared_experts.");
  return make_gpu_moe(dims, w, g);
}

}  // namespace

void build_layers(GpuNemotronH::Impl& m) {
  const NemotronHConfig& c = m.config;
  ParamStore& p = m.params;
  m.embedding = p.take("backbone.embeddings.weight");
  m.embedding_grad = p.grad("backbone.embeddings.weight");
  for (int64_t l = 0; l < c.num_layers(); ++l) {
    const std::string prefix = "backbone.layers." + std::to_string(l) + ".";
    const std::string mixer = prefix + "mixer.";
    GpuBlock b;
    b.norm = p.take(prefix + "norm.weight");
    b.norm_grad = p.grad(prefix + "norm.weight");
    switch (c.pattern[l]) {
      case 'M':
        b.mixer = build_mamba2(p, c, mixer);
        break;
      case '*':
        b.mixer = build_attention(p, c, mixer);
        break;
      case '-': {
        auto [w, g] = take_mlp(p, mixer);
        b.mixer = make_gpu_mlp(c.hidden_size, c.intermediate_size, w, g);
        break;
      }
      case 'E':
        b.mixer = build_moe(p, c, mixer);
        break;
      default:
        throw std::invalid_argument(std::string("GpuNemotronH: unknown layer kind '") + c.pattern[l] + "' in pattern");
    }
    m.blocks.push_back(std::move(b));
  }
  m.norm_f = p.take("backbone.norm_f.weight");
  m.norm_f_grad = p.grad("backbone.norm_f.weight");
  m.lm_head = c.tie_word_embeddings ? m.embedding : p.take("lm_head.weight");
  m.lm_head_grad = c.tie_word_embeddings ? m.embedding_grad : p.grad("lm_head.weight");
  p.check_complete();
}

}  // namespace nemokit::rt::cuda
