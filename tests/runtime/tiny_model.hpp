// A tiny Nemotron-H with all four layer kinds, small enough for finite differences.
#pragma once
#include <random>
#include <vector>

#include "nemokit/runtime/model.hpp"

namespace nemokit::rt::testing {

inline NemotronHConfig tiny_config(const char* pattern = "M*E-M") {
  NemotronHConfig c;
  c.pattern = pattern;
  c.hidden_size = 16;
  c.vocab_size = 32;
  c.mamba_num_heads = 4;
  c.mamba_head_dim = 4;
  c.ssm_state_size = 8;
  c.n_groups = 2;
  c.conv_kernel = 4;
  c.chunk_size = 4;
  c.time_step_min = 1e-4f;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.intermediate_size = 24;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 8;
  c.moe_shared_expert_intermediate_size = 12;
  c.routed_scaling_factor = 2.5f;
  c.initializer_range = 0.2f;  // large enough that every path carries a visible gradient
  return c;
}

inline Batch random_batch(int64_t batch, int64_t seq, int64_t vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int32_t> tok(0, int32_t(vocab - 1));
  Batch b;
  b.batch = batch, b.seq = seq;
  for (int64_t i = 0; i < batch * seq; ++i) b.input_ids.push_back(tok(gen));
  for (int64_t i = 0; i < batch * seq; ++i) b.targets.push_back(tok(gen));
  return b;
}

}  // namespace nemokit::rt::testing
