// The Nemotron-H model configuration, read from and written to config.json with the same
// keys as transformers' NemotronHConfig.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace nemokit::rt {

struct NemotronHConfig {
  std::string pattern;  // hybrid_override_pattern: M Mamba2, * attention, - MLP, E MoE
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  float layer_norm_epsilon = 1e-5f;
  float initializer_range = 0.02f;
  bool tie_word_embeddings = false;
  bool rescale_prenorm_residual = true;

  // Mamba2
  int64_t mamba_num_heads = 0, mamba_head_dim = 0, ssm_state_size = 0, n_groups = 1;
  int64_t conv_kernel = 4, chunk_size = 128, expand = 2;
  float time_step_min = 1e-3f, time_step_max = 0.1f, time_step_floor = 1e-4f;
  bool use_conv_bias = true;

  // attention
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;

  // MLP and MoE
  int64_t intermediate_size = 0;
  std::string mlp_hidden_act = "relu2";
  int64_t n_routed_experts = 0, num_experts_per_tok = 0, moe_intermediate_size = 0;
  int64_t moe_shared_expert_intermediate_size = 0;
  float routed_scaling_factor = 1.0f;
  bool norm_topk_prob = true;
  // LatentMoE (Nemotron 3 Super): the routed experts work in this width, between
  // fc1_latent_proj (hidden -> latent) and fc2_latent_proj (latent -> hidden); the router and
  // the shared expert stay at hidden_size. 0: no latent projection (config.json null).
  int64_t moe_latent_size = 0;

  // Multi-token prediction: num_nextn_predict_layers depths, each a stack of mtp_pattern
  // layers (mtp_hybrid_override_pattern, or transformers' mtp_layers_block_type) that
  // predicts one token further ahead. Weights under mtp.layers.*, as the public checkpoints.
  int64_t num_nextn_predict_layers = 0;
  std::string mtp_pattern;

  int64_t bos_token_id = 1, eos_token_id = 2, pad_token_id = 0;

  // Keys this runtime does not use, kept so a config round-trips.
  nlohmann::json extra = nlohmann::json::object();

  int64_t num_layers() const { return int64_t(pattern.size()); }
  int64_t mamba_d_inner() const { return mamba_num_heads * mamba_head_dim; }
  int64_t mamba_conv_dim() const { return mamba_d_inner() + 2 * n_groups * ssm_state_size; }
  int64_t mamba_in_proj_dim() const { return mamba_d_inner() + mamba_conv_dim() + mamba_num_heads; }

  // `source` names the file in error messages. Throws std::runtime_error naming the key.
  static NemotronHConfig from_json(const nlohmann::json& j, const std::string& source);
  // A recipe's [model] table: as from_json, but a key no NemotronH config.json has is an error
  // naming it (a misspelt key would otherwise train another model than the one written).
  static NemotronHConfig from_recipe_table(const nlohmann::json& table, const std::string& source);
  static NemotronHConfig load(const std::string& path);
  nlohmann::json to_json() const;
  void validate(const std::string& source) const;
  // Throws, naming the key of the largest part, when the float32 weights and gradients would not
  // fit in this machine's memory. Checked where a model is built, not where a config is read: a
  // login node plans and submits jobs for models far larger than itself.
  void check_fits_in_memory(const std::string& source) const;
  // Every weight the config sizes (matrices, norms, biases, the router's bias; an encoder of an
  // omni3 model not included), counted in long double so that absurd sizes cannot overflow.
  long double parameter_count() const;
};

// This machine's physical memory in bytes (0 when it cannot be read).
long double machine_memory_bytes();

}  // namespace nemokit::rt
