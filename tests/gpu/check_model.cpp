// The GPU model (src/cuda/model/) against the CPU NemotronH: logits of forward and the loss of
// forward_backward(..., backward = false), for a tiny hybrid with all four mixers (Mamba2,
// attention, MLP, MoE with a shared expert), batch 2, a sequence that is not a multiple of the
// scan's chunk, with and without packed documents.
//
// The CPU model's parameters are rounded to bf16 in place before both runs, so both sides hold
// the same weights and the only difference left is the GPU's bf16 activations (the residual
// stream, every projection's output, the conv and the scan's outputs), each a relative rounding
// of 2^-9, through four blocks and the head. The logits' tolerance is therefore relative to
// their own scale: atol = 3e-2 * max|logit| (a few bf16 roundings compounding through the blocks;
// one rounding of a sum of 64 products is ~4e-3), rtol 3e-2. The loss averages ~80 rows of
// log-softmax, whose errors are of either sign and mostly cancel: 5e-3 relative.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gpu_model.hpp"
#include "nemokit/runtime/model.hpp"
#include "op_check.hpp"

namespace rt = nemokit::rt;
namespace gpu = nemokit::rt::cuda;
using namespace nemokit::gpucheck;

namespace {

rt::NemotronHConfig tiny_hybrid(const char* pattern) {
  rt::NemotronHConfig c;
  c.pattern = pattern;
  c.hidden_size = 64;
  c.vocab_size = 96;
  c.mamba_num_heads = 4, c.mamba_head_dim = 16, c.n_groups = 2, c.ssm_state_size = 16;
  c.conv_kernel = 4, c.chunk_size = 16;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 16;
  c.intermediate_size = 96;
  c.n_routed_experts = 4, c.num_experts_per_tok = 2, c.moe_intermediate_size = 32;
  c.moe_shared_expert_intermediate_size = 48;
  c.routed_scaling_factor = 2.5f;
  // Logits of a visible spread, so their errors mean something. Not larger: with 0.2 the
  // activations reaching the MoE layer after three blocks differ enough in bf16 that a router
  // near a tie picks another expert for a row, and that row's logits then differ outright.
  c.initializer_range = 0.1f;
  return c;
}

void round_parameters_to_bf16(rt::NemotronH& model) {
  for (rt::Parameter* p : model.parameters()) {
    float* v = p->value.f32();
    for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = rt::bf16_to_float(rt::float_to_bf16(v[i]));
  }
}

template <class T>
std::unique_ptr<DeviceArray<T>> device_copy(const std::vector<T>& host) {
  if (host.empty()) return nullptr;
  auto d = std::make_unique<DeviceArray<T>>(host.size());
  d->upload(host);
  return d;
}

template <class T>
const T* ptr(const std::unique_ptr<DeviceArray<T>>& a) {
  return a ? a->get() : nullptr;
}

void check_model(Checker& c, const char* pattern, bool packed, bool weighted) {
  const int64_t B = 2, T = 40, R = B * T;
  rt::NemotronH model(tiny_hybrid(pattern));
  model.init_weights(7);
  round_parameters_to_bf16(model);
  const int64_t V = model.config().vocab_size;

  rt::Batch batch;
  batch.batch = B, batch.seq = T;
  batch.input_ids = c.ints(R, 0, int32_t(V));
  batch.targets = c.ints(R, 0, int32_t(V));
  for (int64_t r = 0; r < R; r += 7) batch.targets[r] = -1;  // not in the loss
  if (packed) batch.set_documents({{0, 13, 40}, {0, 5, 29, 40}});
  if (weighted) batch.loss_weights = c.uniform(R, 0.0f, 0.05f, false);

  const rt::Tensor& cpu_out = model.forward(batch);
  const std::vector<float> cpu_logits(cpu_out.f32(), cpu_out.f32() + R * V);
  const rt::StepResult cpu_loss = model.forward_backward(batch, rt::LossOptions{}, false);

  gpu::GpuNemotronH g(model);
  auto tokens = device_copy(batch.input_ids), targets = device_copy(batch.targets), doc = device_copy(batch.doc_ids);
  auto weights = device_copy(batch.loss_weights);
  const float* logits_d = g.forward(tokens->get(), B, T, ptr(doc));
  std::vector<float> gpu_logits(R * V);
  cuda_or_throw(cudaMemcpy(gpu_logits.data(), logits_d, sizeof(float) * R * V, cudaMemcpyDeviceToHost), "logits");

  float scale = 0;
  for (float x : cpu_logits) scale = std::max(scale, std::fabs(x));
  c.expect_close("logits", gpu_logits, cpu_logits, Tolerance{3e-2 * scale, 3e-2});

  const rt::StepResult gpu_loss = g.loss(tokens->get(), targets->get(), B, T, ptr(doc), ptr(weights));
  if (gpu_loss.tokens != cpu_loss.tokens)
    c.fail("loss counts " + std::to_string(gpu_loss.tokens) + " tokens, the reference " + std::to_string(cpu_loss.tokens));
  c.expect_close("loss", std::vector<float>{gpu_loss.loss}, std::vector<float>{cpu_loss.loss}, Tolerance{0, 5e-3});
  c.expect_close("loss_sum", std::vector<float>{float(gpu_loss.loss_sum)}, std::vector<float>{float(cpu_loss.loss_sum)}, Tolerance{0, 5e-3});
}

}  // namespace

GPU_OP_CASE(model_forward_hybrid) { check_model(c, "M*-E", false, false); }
GPU_OP_CASE(model_forward_hybrid_packed) { check_model(c, "ME*-", true, false); }
GPU_OP_CASE(model_forward_hybrid_weighted_loss) { check_model(c, "M*-E", true, true); }

// What the GPU model does not implement yet is refused at construction, naming the setting.
GPU_OP_CASE(model_refuses_latent_moe) {
  rt::NemotronHConfig cfg = tiny_hybrid("ME");
  cfg.moe_latent_size = 32;
  rt::NemotronH model(cfg);
  try {
    gpu::GpuNemotronH g(model);
    c.fail("a LatentMoE model was accepted");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find("moe_latent_size") == std::string::npos)
      c.fail(std::string("the refusal does not name moe_latent_size: ") + e.what());
  }
}

// A token outside the vocabulary is an error, as the CPU's Batch::validate makes it.
GPU_OP_CASE(model_rejects_token_outside_vocab) {
  rt::NemotronH model(tiny_hybrid("-"));
  model.init_weights(3);
  gpu::GpuNemotronH g(model);
  auto tokens = device_copy(std::vector<int32_t>{1, 2, int32_t(model.config().vocab_size), 3});
  try {
    g.forward(tokens->get(), 1, 4);
    c.fail("an input id equal to the vocabulary size was accepted");
  } catch (const std::invalid_argument&) {
  }
}
