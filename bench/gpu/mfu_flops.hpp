// Training FLOPs per token of a Nemotron-H config at sequence length T, for MFU: 6 per
// multiply-accumulate of the forward (2 per MAC, times 3 for forward and backward), counting
//   - every matrix product a token goes through: Mamba's in_proj and out_proj, attention's q, k,
//     v and o, the MLP, the router, the top-k routed experts and the shared expert, the LM head
//     (the 6N of llm.c, with only the active experts);
//   - causal attention's scores and weighted values: T * heads * head_dim MACs per token and
//     layer (half of the full 2 * T * C, as llm.c's 6 * L * C * T);
//   - the SSD chunked scan's products (Q = chunk_size, N = state, P = head_dim, H heads, G
//     groups): C B^T within the chunk (causal half, G*Q*N/2), its use on x (H*Q*P/2), the chunk
//     state (H*P*N) and the state's output (H*P*N).
// Not counted: the embedding lookup, norms, activations, the conv1d (K MACs per channel), softmax.
#pragma once
#include <cstdint>

#include "nemokit/runtime/config.hpp"

namespace nemokit::bench {

inline double training_flops_per_token(const rt::NemotronHConfig& c, int64_t T) {
  const double d = double(c.hidden_size);
  double macs = d * double(c.vocab_size);  // LM head
  for (char kind : c.pattern) {
    switch (kind) {
      case 'M': {
        const double H = double(c.mamba_num_heads), P = double(c.mamba_head_dim), N = double(c.ssm_state_size);
        const double G = double(c.n_groups), Q = double(c.chunk_size);
        macs += d * double(c.mamba_in_proj_dim()) + double(c.mamba_d_inner()) * d;
        macs += 0.5 * G * Q * N + 0.5 * H * Q * P + 2.0 * H * P * N;
        break;
      }
      case '*': {
        const double q = double(c.num_attention_heads * c.head_dim), kv = double(c.num_key_value_heads * c.head_dim);
        macs += d * q + 2.0 * d * kv + q * d;
        macs += double(T) * q;
        break;
      }
      case '-':
        macs += 2.0 * d * double(c.intermediate_size);
        break;
      case 'E':
        macs += d * double(c.n_routed_experts);
        macs += double(c.num_experts_per_tok) * 2.0 * d * double(c.moe_intermediate_size);
        macs += 2.0 * d * double(c.moe_shared_expert_intermediate_size);
        break;
      default:
        break;
    }
  }
  return 6.0 * macs;
}

}  // namespace nemokit::bench
