// Mixture of experts (MoeMixer's forward without a latent space): router logits x Wg^T in fp32,
// sigmoid top-k with the correction bias, a counting-sort dispatch, the gathered rows through
// their experts (grouped GEMMs), the weighted combine, plus the shared expert.
#include <vector>

#include "cuda_check.cuh"
#include "mixers.hpp"
#include "moe.cuh"

namespace nemokit::rt::cuda {
namespace {

class GpuMoe : public GpuMixer {
 public:
  GpuMoe(const MoeDims& dims, const MoeWeights& w)
      : s_(dims), w_(w), host_counts_(dims.experts),
        shared_(dims.shared_inner > 0 ? make_gpu_mlp(dims.hidden, dims.shared_inner, w.shared) : nullptr) {}

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
    // No expert statistics yet (training forwards will pass them with the pad mask).
    moe_router_forward(ids, weights, scores, nullptr, logits, w_.score_bias, nullptr, R, E, k,
                       s_.routed_scaling_factor, s_.norm_topk_prob, run.stream);
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

 private:
  MoeDims s_;
  MoeWeights w_;
  std::vector<int32_t> host_counts_;  // the backward's GEMM sizes too
  std::unique_ptr<GpuMixer> shared_;
  DeviceBuffer<float> logits_, scores_, weights_;
  DeviceBuffer<int32_t> ids_, counts_, offsets_, src_, pos_;
  DeviceBuffer<unsigned char> dispatch_scratch_, experts_scratch_;
  DeviceBuffer<bf16> x_perm_, h_, a_, y_perm_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_moe(const MoeDims& dims, const MoeWeights& w) {
  return std::make_unique<GpuMoe>(dims, w);
}

}  // namespace nemokit::rt::cuda
