// Squared-ReLU MLP (MlpMixer): y = down(relu(up(x))^2). Also the MoE layer's shared expert.
#include "cuda_check.cuh"
#include "elementwise.cuh"
#include "mixers.hpp"

namespace nemokit::rt::cuda {
namespace {

class GpuMlp : public GpuMixer {
 public:
  GpuMlp(int64_t hidden, int64_t inner, const MlpWeights& w, const MlpGrads& g)
      : d_(hidden), inner_(inner), w_(w), g_(g), lora_up_(w.lora_up), lora_down_(w.lora_down) {}

  void forward(const MixerRun& run, const bf16* x, bf16* y) override {
    const int64_t R = run.rows;
    bf16* h = h_.reserve(R * inner_);  // kept: relu2's backward reads the pre-activation
    bf16* a = a_.reserve(R * inner_);  // kept: down's weight gradient reads it
    linear_forward(*run.lt, h, x, w_.up, R, d_, inner_, run.stream);
    lora_up_.forward(run, h, x, d_, inner_);
    relu2_forward(a, h, R * inner_, run.stream);
    linear_forward(*run.lt, y, a, w_.down, R, inner_, d_, run.stream);
    lora_down_.forward(run, y, a, inner_, d_);
  }

  void backward(const MixerRun& run, const bf16* x, const bf16* dy, bf16* dx) override {
    const int64_t R = run.rows, n = R * inner_;
    bf16* da = da_.reserve(n);
    bf16* dh = dh_.reserve(n);
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(da, 0, sizeof(bf16) * n, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dh, 0, sizeof(bf16) * n, run.stream));
    linear_backward(*run.lt, da, g_.down, dy, a_.get(), w_.down, R, inner_, d_, run.stream);
    lora_down_.backward(run, da, dy, a_.get(), inner_, d_);
    relu2_backward(dh, da, h_.get(), n, run.stream);
    linear_backward(*run.lt, dx, g_.up, dh, x, w_.up, R, d_, inner_, run.stream);
    lora_up_.backward(run, dx, dh, x, d_, inner_);
  }

 private:
  int64_t d_, inner_;
  MlpWeights w_;
  MlpGrads g_;
  LoraPath lora_up_, lora_down_;
  DeviceBuffer<bf16> h_, a_, da_, dh_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_mlp(int64_t hidden, int64_t inner, const MlpWeights& w, const MlpGrads& g) {
  return std::make_unique<GpuMlp>(hidden, inner, w, g);
}

}  // namespace nemokit::rt::cuda
