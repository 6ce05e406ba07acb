#include "nemokit/runtime/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <stdexcept>
#include <vector>

#include "nemokit/runtime/json_file.hpp"

namespace nemokit::rt {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& key, const std::string& what) {
  throw std::runtime_error(source + ": key '" + key + "': " + what);
}

template <class T> void read(const json& j, const std::string& source, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) fail(source, key, "expected true or false");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) fail(source, key, "expected an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) fail(source, key, "expected a number");
    } else {
      if (!it->is_string()) fail(source, key, "expected a string");
    }
    out = it->get<T>();
  } catch (const json::exception& e) {
    fail(source, key, json_error_text(e));
  }
}

// transformers 5 writes the pattern as a list (layers_block_type / layer_types).
std::string pattern_from_layer_types(const json& list, const std::string& source, const char* key) {
  if (!list.is_array()) fail(source, key, "expected a list of strings");
  std::string pattern;
  for (const auto& item : list) {
    std::string t = item.is_string() ? item.get<std::string>() : "";
    if (t == "linear_attention" || t == "mamba") pattern += 'M';
    else if (t == "full_attention" || t == "attention") pattern += '*';
    else if (t == "mlp") pattern += '-';
    else if (t == "moe") pattern += 'E';
    else fail(source, key, "unknown layer type '" + item.dump() + "'");
  }
  return pattern;
}

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {
      "hybrid_override_pattern", "layer_types", "layers_block_type", "hidden_size", "vocab_size", "layer_norm_epsilon",
      "initializer_range", "tie_word_embeddings", "rescale_prenorm_residual", "mamba_num_heads",
      "mamba_head_dim", "ssm_state_size", "n_groups", "conv_kernel", "chunk_size", "expand", "time_step_min",
      "time_step_max", "time_step_floor", "use_conv_bias", "num_attention_heads", "num_key_value_heads",
      "head_dim", "intermediate_size", "mlp_hidden_act", "n_routed_experts", "num_experts_per_tok",
      "moe_intermediate_size", "moe_shared_expert_intermediate_size", "routed_scaling_factor",
      "norm_topk_prob", "moe_latent_size", "num_nextn_predict_layers", "mtp_hybrid_override_pattern",
      "mtp_layers_block_type", "bos_token_id", "eos_token_id", "pad_token_id", "num_hidden_layers", "model_type",
      "architectures"};
  return keys;
}

// Keys of transformers' NemotronHConfig (5.x) that this runtime does not read: a config.json
// carries them, so a recipe's [model] table, written in the same keys, may too.
const std::set<std::string>& reference_only_keys() {
  static const std::set<std::string> keys = {
      "use_cache", "num_logits_to_keep", "max_position_embeddings", "attention_bias", "attention_dropout",
      "sliding_window", "mlp_bias", "use_mamba_kernels", "mamba_hidden_act", "time_step_limit", "mamba_proj_bias",
      "mamba_ssm_cache_dtype", "output_router_logits", "n_shared_experts",
      "moe_shared_expert_overlap", "n_group", "topk_group", "use_bias", "residual_in_fp32", "hidden_dropout", "torch_dtype", "dtype"};
  return keys;
}

// One kind of weight the config sizes, with the key that sizes it.
struct WeightPart {
  const char* key;
  int64_t value;
  const char* what;
  long double parameters;
};

// The model's big matrices by kind, counted in long double so absurd sizes cannot overflow.
std::vector<WeightPart> weight_parts(const NemotronHConfig& c) {
  const long double h = c.hidden_size;
  auto layers = [&](char kind) { return (long double)std::count(c.pattern.begin(), c.pattern.end(), kind); };
  const long double d_inner = (long double)c.mamba_num_heads * c.mamba_head_dim;
  const long double conv_dim = d_inner + 2.0L * c.n_groups * c.ssm_state_size;
  const long double in_proj = d_inner + conv_dim + c.mamba_num_heads;
  const long double q = (long double)c.num_attention_heads * c.head_dim;
  const long double kv = 2.0L * c.num_key_value_heads * c.head_dim;
  // LatentMoE experts read and write the latent width; the router row stays at hidden.
  const long double latent = c.moe_latent_size > 0 ? c.moe_latent_size : h;
  const long double expert = 2.0L * latent * c.moe_intermediate_size + h;  // up, down, router row
  const long double latent_proj = c.moe_latent_size > 0 ? 2.0L * h * latent : 0;
  // Each MTP depth: enorm/hnorm, eh_proj [h, 2h], final_layernorm and its own layers.
  auto layer_weights = [&](char kind) -> long double {
    switch (kind) {
      case '*': return h * (q + kv) + q * h;
      case '-': return 2.0L * h * c.intermediate_size;
      case 'E': return c.n_routed_experts * expert + latent_proj + 2.0L * h * c.moe_shared_expert_intermediate_size;
      default: return 0;
    }
  };
  long double mtp_depth = 2.0L * h * h + 3.0L * h;
  for (char kind : c.mtp_pattern) mtp_depth += layer_weights(kind) + h;
  return {
      {"vocab_size", c.vocab_size, "embeddings", (c.tie_word_embeddings ? 1 : 2) * (long double)c.vocab_size * h},
      {"mamba_num_heads", c.mamba_num_heads, "Mamba2 mixers",
       layers('M') * (h * in_proj + conv_dim * c.conv_kernel + d_inner * h)},
      {"num_attention_heads", c.num_attention_heads, "attention", layers('*') * (h * (q + kv) + q * h)},
      {"intermediate_size", c.intermediate_size, "MLPs", layers('-') * 2.0L * h * c.intermediate_size},
      {"n_routed_experts", c.n_routed_experts, "routed experts", layers('E') * c.n_routed_experts * expert},
      {"moe_latent_size", c.moe_latent_size, "latent projections", layers('E') * latent_proj},
      {"num_nextn_predict_layers", c.num_nextn_predict_layers, "multi-token prediction layers",
       (long double)c.num_nextn_predict_layers * mtp_depth},
      {"moe_shared_expert_intermediate_size", c.moe_shared_expert_intermediate_size, "shared experts",
       layers('E') * 2.0L * h * c.moe_shared_expert_intermediate_size},
  };
}

}  // namespace

long double machine_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? (long double)pages * page : 0;
}

NemotronHConfig NemotronHConfig::from_recipe_table(const json& table, const std::string& source) {
  if (table.is_object())
    for (auto it = table.begin(); it != table.end(); ++it)
      if (!known_keys().count(it.key()) && !reference_only_keys().count(it.key()))
        fail(source, it.key(), "unknown key (not a key of a NemotronH config.json)");
  return from_json(table, source);
}

NemotronHConfig NemotronHConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object");
  NemotronHConfig c;
  if (j.contains("hybrid_override_pattern")) read(j, source, "hybrid_override_pattern", c.pattern);
  else if (j.contains("layers_block_type")) c.pattern = pattern_from_layer_types(j["layers_block_type"], source, "layers_block_type");
  else if (j.contains("layer_types")) c.pattern = pattern_from_layer_types(j["layer_types"], source, "layer_types");
  read(j, source, "hidden_size", c.hidden_size);
  read(j, source, "vocab_size", c.vocab_size);
  read(j, source, "layer_norm_epsilon", c.layer_norm_epsilon);
  read(j, source, "initializer_range", c.initializer_range);
  read(j, source, "tie_word_embeddings", c.tie_word_embeddings);
  read(j, source, "rescale_prenorm_residual", c.rescale_prenorm_residual);
  read(j, source, "mamba_num_heads", c.mamba_num_heads);
  read(j, source, "mamba_head_dim", c.mamba_head_dim);
  read(j, source, "ssm_state_size", c.ssm_state_size);
  read(j, source, "n_groups", c.n_groups);
  read(j, source, "conv_kernel", c.conv_kernel);
  read(j, source, "chunk_size", c.chunk_size);
  read(j, source, "expand", c.expand);
  read(j, source, "time_step_min", c.time_step_min);
  read(j, source, "time_step_max", c.time_step_max);
  read(j, source, "time_step_floor", c.time_step_floor);
  read(j, source, "use_conv_bias", c.use_conv_bias);
  read(j, source, "num_attention_heads", c.num_attention_heads);
  read(j, source, "num_key_value_heads", c.num_key_value_heads);
  read(j, source, "head_dim", c.head_dim);
  read(j, source, "intermediate_size", c.intermediate_size);
  read(j, source, "mlp_hidden_act", c.mlp_hidden_act);
  read(j, source, "n_routed_experts", c.n_routed_experts);
  read(j, source, "num_experts_per_tok", c.num_experts_per_tok);
  read(j, source, "moe_intermediate_size", c.moe_intermediate_size);
  read(j, source, "moe_shared_expert_intermediate_size", c.moe_shared_expert_intermediate_size);
  read(j, source, "routed_scaling_factor", c.routed_scaling_factor);
  read(j, source, "norm_topk_prob", c.norm_topk_prob);
  read(j, source, "moe_latent_size", c.moe_latent_size);
  read(j, source, "num_nextn_predict_layers", c.num_nextn_predict_layers);
  if (j.contains("mtp_hybrid_override_pattern")) read(j, source, "mtp_hybrid_override_pattern", c.mtp_pattern);
  else if (j.contains("mtp_layers_block_type") && !j["mtp_layers_block_type"].is_null())
    c.mtp_pattern = pattern_from_layer_types(j["mtp_layers_block_type"], source, "mtp_layers_block_type");
  // transformers' default when a config asks for MTP layers without naming them
  if (c.num_nextn_predict_layers > 0 && c.mtp_pattern.empty()) c.mtp_pattern = "*E";
  read(j, source, "bos_token_id", c.bos_token_id);
  read(j, source, "eos_token_id", c.eos_token_id);
  read(j, source, "pad_token_id", c.pad_token_id);
  if (c.num_key_value_heads == 0) c.num_key_value_heads = c.num_attention_heads;
  if (c.head_dim == 0 && c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known_keys().count(it.key())) c.extra[it.key()] = it.value();
  c.validate(source);
  return c;
}

NemotronHConfig NemotronHConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + json_error_text(e));
  }
  return from_json(j, path);
}

void NemotronHConfig::validate(const std::string& source) const {
  auto need = [&](const char* key, bool ok, const std::string& what) {
    if (!ok) fail(source, key, what);
  };
  need("hybrid_override_pattern", !pattern.empty(), "missing or empty");
  for (char ch : pattern)
    need("hybrid_override_pattern", std::string("M*-E").find(ch) != std::string::npos,
         std::string("unknown layer letter '") + ch + "' (use M, *, - or E)");
  need("hidden_size", hidden_size > 0, "must be positive");
  need("vocab_size", vocab_size > 0, "must be positive");
  need("layer_norm_epsilon", layer_norm_epsilon > 0, "must be positive");
  need("num_nextn_predict_layers", num_nextn_predict_layers >= 0, "must not be negative");
  // The MTP layers are built from the same mixers and keys as the main stack; no public MTP
  // layer has a Mamba mixer (and one would need a decoding cache slot it never uses).
  const std::string mtp = num_nextn_predict_layers > 0 ? mtp_pattern : "";
  if (num_nextn_predict_layers > 0) need("mtp_hybrid_override_pattern", !mtp.empty(), "missing or empty");
  for (char ch : mtp)
    need("mtp_hybrid_override_pattern", std::string("*-E").find(ch) != std::string::npos,
         std::string("unknown MTP layer letter '") + ch + "' (use *, - or E)");
  const std::string all = pattern + mtp;
  if (pattern.find('M') != std::string::npos) {
    need("mamba_num_heads", mamba_num_heads > 0, "must be positive");
    need("mamba_head_dim", mamba_head_dim > 0, "must be positive");
    need("ssm_state_size", ssm_state_size > 0, "must be positive");
    need("n_groups", n_groups > 0 && mamba_num_heads % n_groups == 0, "must divide mamba_num_heads");
    need("conv_kernel", conv_kernel > 0, "must be positive");
    need("chunk_size", chunk_size > 0, "must be positive");
    need("time_step_min", time_step_min >= 0, "must not be negative");
  }
  if (all.find('*') != std::string::npos) {
    need("num_attention_heads", num_attention_heads > 0, "must be positive");
    need("num_key_value_heads", num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
         "must divide num_attention_heads");
    need("head_dim", head_dim > 0, "must be positive");
  }
  if (all.find('-') != std::string::npos) need("intermediate_size", intermediate_size > 0, "must be positive");
  if (all.find('-') != std::string::npos || all.find('E') != std::string::npos)
    need("mlp_hidden_act", mlp_hidden_act == "relu2", "only relu2 is supported");
  need("moe_latent_size", moe_latent_size >= 0, "must be positive (or null for no latent projection)");
  if (all.find('E') != std::string::npos) {
    need("n_routed_experts", n_routed_experts >= 2, "must be at least 2");
    need("num_experts_per_tok", num_experts_per_tok > 0 && num_experts_per_tok <= n_routed_experts,
         "must be between 1 and n_routed_experts");
    need("moe_intermediate_size", moe_intermediate_size > 0, "must be positive");
    need("moe_shared_expert_intermediate_size", moe_shared_expert_intermediate_size >= 0, "must not be negative");
    if (extra.contains("n_group") && extra["n_group"] != 1) fail(source, "n_group", "only 1 is supported");
  }
}

// A model is built from these sizes before any checkpoint is read: weights and gradients that
// cannot fit in this machine's memory are refused here, naming the key of the largest part,
// rather than ending in std::bad_alloc (or the OOM killer) while the model is made.
long double NemotronHConfig::parameter_count() const {
  long double total = 0;
  for (const auto& p : weight_parts(*this)) total += p.parameters;
  // The vectors beside the matrices: a norm per layer and the final one, Mamba2's conv bias,
  // A_log, D, dt_bias and gated norm, the router's correction bias, and per MTP depth its layers'
  // mixers' vectors (the depth's norms are in weight_parts).
  const long double h = hidden_size;
  auto count = [&](const std::string& pat, char kind) { return (long double)std::count(pat.begin(), pat.end(), kind); };
  auto vectors = [&](const std::string& pat) {
    return count(pat, 'M') * ((use_conv_bias ? mamba_conv_dim() : 0) + 3.0L * mamba_num_heads + mamba_d_inner()) +
           count(pat, 'E') * (long double)n_routed_experts;
  };
  total += vectors(pattern) + (long double)pattern.size() * h + h;
  total += (long double)num_nextn_predict_layers * vectors(mtp_pattern);
  return total;
}

void NemotronHConfig::check_fits_in_memory(const std::string& source) const {
  const long double memory = machine_memory_bytes();
  if (memory <= 0) return;
  auto parts = weight_parts(*this);
  long double total = 0;
  for (const auto& p : parts) total += p.parameters;
  const long double bytes = total * 8;  // float32 weight + float32 gradient
  if (bytes <= memory) return;
  const auto& big = *std::max_element(parts.begin(), parts.end(),
                                      [](const WeightPart& a, const WeightPart& b) { return a.parameters < b.parameters; });
  char msg[320];
  std::snprintf(msg, sizeof msg,
                "%lld makes a model of %.3Lg parameters (%.3Lg in %s), %.3Lg GB as float32 weights and gradients, "
                "more than this machine's %.3Lg GB of memory",
                (long long)big.value, total, big.parameters, big.what, bytes / 1e9L, memory / 1e9L);
  fail(source, big.key, msg);
}

json NemotronHConfig::to_json() const {
  json j = extra;
  j["architectures"] = {"NemotronHForCausalLM"};
  j["model_type"] = "nemotron_h";
  j["hybrid_override_pattern"] = pattern;
  j["num_hidden_layers"] = num_layers();
  j["hidden_size"] = hidden_size;
  j["vocab_size"] = vocab_size;
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["initializer_range"] = initializer_range;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["rescale_prenorm_residual"] = rescale_prenorm_residual;
  j["mamba_num_heads"] = mamba_num_heads;
  j["mamba_head_dim"] = mamba_head_dim;
  j["ssm_state_size"] = ssm_state_size;
  j["n_groups"] = n_groups;
  j["conv_kernel"] = conv_kernel;
  j["chunk_size"] = chunk_size;
  j["expand"] = expand;
  j["time_step_min"] = time_step_min;
  j["time_step_max"] = time_step_max;
  j["time_step_floor"] = time_step_floor;
  j["use_conv_bias"] = use_conv_bias;
  j["mamba_hidden_act"] = "silu";
  j["use_bias"] = false;
  j["mlp_bias"] = false;
  j["attention_bias"] = false;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["intermediate_size"] = intermediate_size;
  j["mlp_hidden_act"] = mlp_hidden_act;
  j["n_routed_experts"] = n_routed_experts;
  j["num_experts_per_tok"] = num_experts_per_tok;
  j["moe_intermediate_size"] = moe_intermediate_size;
  j["moe_shared_expert_intermediate_size"] = moe_shared_expert_intermediate_size;
  j["routed_scaling_factor"] = routed_scaling_factor;
  j["norm_topk_prob"] = norm_topk_prob;
  j["moe_latent_size"] = moe_latent_size > 0 ? json(moe_latent_size) : json(nullptr);
  j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  // The Hub configs' spelling; transformers 5 turns it into mtp_layers_block_type on load.
  if (num_nextn_predict_layers > 0) j["mtp_hybrid_override_pattern"] = mtp_pattern;
  j["n_group"] = 1;
  j["topk_group"] = 1;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["pad_token_id"] = pad_token_id;
  j["torch_dtype"] = "float32";
  return j;
}

}  // namespace nemokit::rt
