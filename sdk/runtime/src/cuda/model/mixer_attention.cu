// GQA self-attention (AttentionMixer, causal): q/k/v projections, no rotary embedding, flash
// attention at scale head_dim^-0.5 with document masking, o_proj.
#include "attention.cuh"
#include "mixers.hpp"

namespace nemokit::rt::cuda {
namespace {

class GpuAttention : public GpuMixer {
 public:
  GpuAttention(const AttentionDims& dims, const AttentionWeights& w) : s_(dims), w_(w) {}

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
    linear_forward(*run.lt, k, x, w_.k, R, d, kd, run.stream);
    linear_forward(*run.lt, v, x, w_.v, R, d, kd, run.stream);
    AttentionShape shape{run.batch, run.seq, s_.heads, s_.kv_heads, s_.head_dim, true};
    attention_forward(shape, q, k, v, run.doc, att, lse, run.stream);
    linear_forward(*run.lt, y, att, w_.o, R, qd, d, run.stream);
  }

 private:
  AttentionDims s_;
  AttentionWeights w_;
  DeviceBuffer<bf16> q_, k_, v_, att_;
  DeviceBuffer<float> lse_;  // the flash backward recomputes the probabilities from it
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_attention(const AttentionDims& dims, const AttentionWeights& w) {
  return std::make_unique<GpuAttention>(dims, w);
}

}  // namespace nemokit::rt::cuda
