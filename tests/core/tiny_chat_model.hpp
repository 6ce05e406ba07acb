// A tiny chat model made as a user makes one: `nemokit tokenizer train` on some texts with the
// Nemotron 3 chat template's markers as special tokens, then `nemokit model init` from a
// config.json, with the tokenizer copied beside the weights. The SFT and RL stage tests fine-tune it.
#pragma once

#include "run_cli.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace nemokit::test {

// The config the RL stage tests use: every layer kind, hidden 32.
inline nlohmann::json tiny_chat_model_config(int vocab) {
  return {{"hybrid_override_pattern", "ME*-"}, {"hidden_size", 32}, {"vocab_size", vocab}, {"mamba_num_heads", 4},
          {"mamba_head_dim", 16}, {"ssm_state_size", 8}, {"n_groups", 2}, {"conv_kernel", 4}, {"chunk_size", 16},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 8}, {"intermediate_size", 64},
          {"n_routed_experts", 4}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 16},
          {"moe_shared_expert_intermediate_size", 32}, {"tie_word_embeddings", true}};
}

// Writes BASE/tokenizer.json (vocab from config["vocab_size"]) and the model folder `model`.
// Fails the current test (ASSERT) when a command fails; callers check HasFatalFailure().
inline void make_tiny_chat_model(const std::filesystem::path& base, const std::vector<std::filesystem::path>& texts,
                                 const nlohmann::json& config, int seed, const std::filesystem::path& model) {
  std::string files;
  for (const auto& t : texts) files += " '" + t.string() + "'";
  auto tok = run_cli("tokenizer train --vocab-size " + std::to_string(config["vocab_size"].get<int>()) + " --out '" +
                     (base / "tokenizer.json").string() +
                     "' --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' --special '<think>'"
                     " --special '</think>' --special '<tool_call>' --special '</tool_call>' --special '<tool_response>'"
                     " --special '</tool_response>'" + files);
  ASSERT_EQ(tok.rc, 0) << tok.err;
  std::ofstream(base / "model-config.json") << config.dump();
  auto init = run_cli("model init --config '" + (base / "model-config.json").string() + "' --out '" + model.string() +
                      "' --seed " + std::to_string(seed));
  ASSERT_EQ(init.rc, 0) << init.err;
  std::filesystem::copy_file(base / "tokenizer.json", model / "tokenizer.json");
}

}  // namespace nemokit::test
