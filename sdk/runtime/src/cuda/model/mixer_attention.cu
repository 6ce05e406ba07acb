// GQA self-attention (AttentionMixer, causal): q/k/v projections, no rotary embedding, flash
// attention at scale head_dim^-0.5 with document masking, o_proj.
#include <utility>

#include "attention.cuh"
#include "cuda_check.cuh"
#include "mixers.hpp"

namespace nemokit::rt::cuda {
namespace {

class GpuAttention : public GpuMixer {
 public:
  GpuAttention(const AttentionDims& dims, const AttentionWeights& w, const AttentionGrads& g)
      : s_(dims), w_(w), g_(g), lora_q_(w.lora_q), lora_k_(w.lora_k), lora_v_(w.lora_v), lora_o_(w.lora_o) {}

  void forward(const MixerRun& run, const bf16* x, bf16* y) override {
    const int64_t R = run.rows, d = s_.hidden, qd = s_.heads * s_.head_dim, kd = s_.kv_heads * s_.head_dim;
    // Separate buffers, not one fused [q|k|v] product: the kernel wants each 16-byte aligned with
    // its own contiguous rows, and the checkpoint keeps the three projections apart.
    bf16* q = q_.reserve(R * qd);
    bf16* k = k_.reserve(R * kd);
    bf16* v = v_.reserve(R * kd);
    bf16* att = att_.reserve(R * qd);
    float* lse = lse_.reserve(R * s_.heads);
    linear_forward(*run.lt, q, x, w_.q, R, d, qd, run.stream);
    lora_q_.forward(run, q, x, d, qd);
    linear_forward(*run.lt, k, x, w_.k, R, d, kd, run.stream);
    lora_k_.forward(run, k, x, d, kd);
    linear_forward(*run.lt, v, x, w_.v, R, d, kd, run.stream);
    lora_v_.forward(run, v, x, d, kd);
    attention_forward(shape(run), q, k, v, run.doc, att, lse, run.stream);
    linear_forward(*run.lt, y, att, w_.o, R, qd, d, run.stream);
    lora_o_.forward(run, y, att, qd, d);
  }

  void backward(const MixerRun& run, const bf16* x, const bf16* dy, bf16* dx) override {
    const int64_t R = run.rows, d = s_.hidden, qd = s_.heads * s_.head_dim, kd = s_.kv_heads * s_.head_dim;
    const AttentionShape s = shape(run);
    bf16* datt = datt_.reserve(R * qd);
    bf16* dq = dq_.reserve(R * qd);
    bf16* dk = dk_.reserve(R * kd);
    bf16* dv = dv_.reserve(R * kd);
    const std::pair<bf16*, int64_t> added_into[] = {{datt, R * qd}, {dq, R * qd}, {dk, R * kd}, {dv, R * kd}};
    for (auto [p, n] : added_into) NEMOKIT_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(bf16) * n, run.stream));
    linear_backward(*run.lt, datt, g_.o, dy, att_.get(), w_.o, R, qd, d, run.stream);
    lora_o_.backward(run, datt, dy, att_.get(), qd, d);
    void* ws = workspace_.reserve(attention_backward_workspace_bytes(s));
    attention_backward(s, q_.get(), k_.get(), v_.get(), run.doc, att_.get(), lse_.get(), datt, dq, dk, dv, ws,
                       run.stream);
    linear_backward(*run.lt, dx, g_.q, dq, x, w_.q, R, d, qd, run.stream);
    lora_q_.backward(run, dx, dq, x, d, qd);
    linear_backward(*run.lt, dx, g_.k, dk, x, w_.k, R, d, kd, run.stream);
    lora_k_.backward(run, dx, dk, x, d, kd);
    linear_backward(*run.lt, dx, g_.v, dv, x, w_.v, R, d, kd, run.stream);
    lora_v_.backward(run, dx, dv, x, d, kd);
  }

 private:
  AttentionShape shape(const MixerRun& run) const {
    return AttentionShape{run.batch, run.seq, s_.heads, s_.kv_heads, s_.head_dim, true};
  }

  AttentionDims s_;
  AttentionWeights w_;
  AttentionGrads g_;
  LoraPath lora_q_, lora_k_, lora_v_, lora_o_;
  DeviceBuffer<bf16> q_, k_, v_, att_, datt_, dq_, dk_, dv_;
  DeviceBuffer<float> lse_;  // the flash backward recomputes the probabilities from it
  DeviceBuffer<unsigned char> workspace_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_attention(const AttentionDims& dims, const AttentionWeights& w,
                                             const AttentionGrads& g) {
  return std::make_unique<GpuAttention>(dims, w, g);
}

}  // namespace nemokit::rt::cuda
