// The tiny hybrid the model and trainer checks run (check_model.cpp, check_trainer.cpp): all four
// mixers at sizes the emulated kernels run in milliseconds.
#pragma once
#include <cstdint>

#include "nemokit/runtime/model.hpp"

namespace nemokit::gpucheck {

inline nemokit::rt::NemotronHConfig tiny_hybrid(const char* pattern) {
  nemokit::rt::NemotronHConfig c;
  c.pattern = pattern;
  c.hidden_size = 64;
  c.vocab_size = 96;
  c.mamba_num_heads = 4, c.mamba_head_dim = 16, c.n_groups = 2, c.ssm_state_size = 16;
  c.conv_kernel = 4, c.chunk_size = 16;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 16;
  c.intermediate_size = 96;
  // Every expert chosen (top-k = E): with k < E the GPU's bf16 activations move a near tie of
  // the router for a row now and then (with a seed in ten, at this size), sending that row to
  // another expert, and its logits and gradients then differ outright. The choice itself is
  // checked alone in check_moe.cpp, on the same inputs both sides.
  c.n_routed_experts = 4, c.num_experts_per_tok = 4, c.moe_intermediate_size = 32;
  c.moe_shared_expert_intermediate_size = 48;
  c.routed_scaling_factor = 2.5f;
  c.initializer_range = 0.1f;  // logits of a visible spread, so their errors mean something
  return c;
}

inline void round_parameters_to_bf16(nemokit::rt::NemotronH& model) {
  for (nemokit::rt::Parameter* p : model.parameters()) {
    float* v = p->value.f32();
    for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = nemokit::rt::bf16_to_float(nemokit::rt::float_to_bf16(v[i]));
  }
}

}  // namespace nemokit::gpucheck
