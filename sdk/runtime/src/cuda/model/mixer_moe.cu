// Mixture of experts (MoeMixer without a latent space): router logits x Wg^T in fp32, sigmoid
// top-k with the correction bias, a counting-sort dispatch, the gathered rows through their
// experts (grouped GEMMs), the weighted combine, plus the shared expert; and the way back.
#include <vector>

#include "cuda_check.cuh"
#include "glue.cuh"
#include "mixers.hpp"
#include "moe.cuh"

namespace nemokit::rt::cuda {
namespace {

class GpuMoe : public GpuMixer {
 public:
  GpuMoe(const MoeDims& dims, const MoeWeights& w, const MoeGrads& g)
      : s_(dims), w_(w), g_(g), host_counts_(dims.experts),
        shared_(dims.shared_inner > 0 ? make_gpu_mlp(dims.hidden, dims.shared_inner, w.shared, g.shared) : nullptr) {
    NEMOKIT_CUDA_CHECK(cudaMemset(stat_counts_.reserve(dims.experts), 0, sizeof(int32_t) * dims.experts));
  }

  void forward(const MixerRun& run, const bf16* x, bf16* y) override {
    const int64_t R = run.rows, d = s_.hidden, n = R * s_.top_k;
    const int E = int(s_.experts), k = int(s_.top_k);
    float* logits = logits_.reserve(R * E);
    float* scores = scores_.reserve(R * E);
    float* weights = weights_.reserve(n);
    int32_t* ids = ids_.reserve(n);
    int32_t* counts = counts_.reserve(E);
    int32_t* offsets = offsets_.reserve(E + 1);
    int32_t* src = src_.reserve(n);
    int32_t* pos = pos_.reserve(n);
    void* dispatch_scratch = dispatch_scratch_.reserve(moe_dispatch_scratch_bytes(R, k, E));
    void* experts_scratch = experts_scratch_.reserve(moe_experts_scratch_bytes(E));
    bf16* x_perm = x_perm_.reserve(n * d);
    bf16* h = h_.reserve(n * s_.inner);
    bf16* a = a_.reserve(n * s_.inner);
    bf16* y_perm = y_perm_.reserve(n * d);

    // The router in fp32, as the reference's sigmoid(x Wg^T) (a bf16 logit would move ties).
    linear_forward(*run.lt, logits, x, w_.gate, R, d, E, run.stream);
    // Training forwards count the choices of non-pad rows for the bias update.
    moe_router_forward(ids, weights, scores, run.training ? stat_counts_.get() : nullptr, logits, w_.score_bias,
                       run.pad, R, E, k, s_.routed_scaling_factor, s_.norm_topk_prob, run.stream);
    moe_dispatch(counts, offsets, src, pos, dispatch_scratch, ids, R, k, E, run.stream);
    moe_expert_counts_to_host(host_counts_.data(), counts, E, run.stream);  // synchronizes
    moe_gather(x_perm, x, src, R, k, d, run.stream);
    moe_experts_forward(run.cublas, experts_scratch, host_counts_.data(), E, h, a, y_perm, x_perm, w_.up, w_.down, d,
                        s_.inner, run.stream);
    // y = shared(x) + sum_j w_j expert_j(x): combine adds into what the shared expert wrote.
    if (shared_)
      shared_->forward(run, x, y);
    else
      NEMOKIT_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(bf16) * R * d, run.stream));
    moe_combine(y, y_perm, weights, pos, R, k, d, run.stream);
  }

  // MoeMixer::backward: the shared expert; the combine (the experts' output gradients and the
  // top-k weights'); the experts; the gather back to the rows; the router through its weight
  // normalization and sigmoid; the router's product.
  void backward(const MixerRun& run, const bf16* x, const bf16* dy, bf16* dx) override {
    const int64_t R = run.rows, d = s_.hidden, n = R * s_.top_k;
    const int E = int(s_.experts), k = int(s_.top_k);
    if (shared_) shared_->backward(run, x, dy, dx);
    bf16* dy_perm = dy_perm_.reserve(n * d);
    float* dweights = dweights_.reserve(n);
    bf16* dx_perm = dx_perm_.reserve(n * d);
    bf16* dh = dh_.reserve(n * s_.inner);
    float* dlogits = dlogits_.reserve(R * E);
    bf16* dlogits_bf16 = dlogits_bf16_.reserve(R * E);
    moe_combine_backward(dy_perm, dweights, dy, y_perm_.get(), weights_.get(), pos_.get(), R, k, d, run.stream);
    moe_experts_backward(run.cublas, experts_scratch_.get(), host_counts_.data(), E, dx_perm, g_.up, g_.down, dh,
                         dy_perm, x_perm_.get(), h_.get(), a_.get(), w_.up, w_.down, d, s_.inner, run.stream);
    moe_gather_backward(dx, dx_perm, pos_.get(), R, k, d, run.stream);
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dlogits, 0, sizeof(float) * R * E, run.stream));
    moe_router_backward(dlogits, dweights, ids_.get(), scores_.get(), R, E, k, s_.routed_scaling_factor,
                        s_.norm_topk_prob, run.stream);
    // The router's product in bf16 like every other: its gradient is a small [rows, E] matrix.
    to_bf16(dlogits_bf16, dlogits, R * E, run.stream);
    linear_backward(*run.lt, dx, g_.gate, dlogits_bf16, x, w_.gate, R, d, E, run.stream);
  }

  int32_t* router_counts() override { return stat_counts_.get(); }

 private:
  MoeDims s_;
  MoeWeights w_;
  MoeGrads g_;
  std::vector<int32_t> host_counts_;  // the backward's GEMM sizes too
  std::unique_ptr<GpuMixer> shared_;
  DeviceBuffer<float> logits_, scores_, weights_;
  DeviceBuffer<int32_t> ids_, counts_, offsets_, src_, pos_;
  DeviceBuffer<unsigned char> dispatch_scratch_, experts_scratch_;
  DeviceBuffer<bf16> x_perm_, h_, a_, y_perm_;
  DeviceBuffer<int32_t> stat_counts_;
  DeviceBuffer<float> dweights_, dlogits_;
  DeviceBuffer<bf16> dy_perm_, dx_perm_, dh_, dlogits_bf16_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_moe(const MoeDims& dims, const MoeWeights& w, const MoeGrads& g) {
  return std::make_unique<GpuMoe>(dims, w, g);
}

}  // namespace nemokit::rt::cuda
