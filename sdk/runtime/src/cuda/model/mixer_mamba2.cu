// Mamba2 mixer (Mamba2Mixer's forward):
//   [z | xBC | dt] = in_proj(x); xBC = silu(causal_conv1d(xBC) + b); dt = max(softplus(dt +
//   dt_bias), time_step_min); A = -exp(A_log); y = SSD(x, dt, A, B, C) + D x;
//   out = out_proj(w * grouped_rmsnorm(y * silu(z))).
// z, xBC and dt stay column ranges of the one in_proj output (the conv, the time step and the
// gated norm read them with its row stride), so nothing is split or copied.
#include "elementwise.cuh"
#include "glue.cuh"
#include "mamba.cuh"
#include "mixers.hpp"
#include "norm.cuh"

namespace nemokit::rt::cuda {
namespace {

class GpuMamba2 : public GpuMixer {
 public:
  GpuMamba2(const Mamba2Dims& dims, const Mamba2Weights& w) : s_(dims), w_(w) {}

  void forward(const MixerRun& run, const bf16* x, bf16* y) override {
    const int64_t R = run.rows, I = s_.d_inner(), conv = s_.conv_dim(), proj = s_.in_proj_dim();
    const int64_t H = s_.heads, G = s_.groups, N = s_.state;
    const SsdShape shape{run.batch, run.seq, H, s_.head_dim, G, N, s_.chunk};
    // All kept for the backward, as the CPU mixer keeps zx_, pre_, xbc_, dt_, scan_, rstd_, states_.
    bf16* zx = zx_.reserve(R * proj);
    bf16* pre = pre_.reserve(R * conv);  // conv output before silu (silu's backward reads it)
    bf16* xbc = xbc_.reserve(R * conv);
    float* dt = dt_.reserve(R * H);
    float* A = A_.reserve(H);
    float* D = D_.reserve(H);
    bf16* scan = scan_.reserve(R * I);
    bf16* normed = normed_.reserve(R * I);
    float* rstd = rstd_.reserve(R * G);
    float* states = states_.reserve(run.batch * H * shape.num_chunks() * s_.head_dim * N);

    linear_forward(*run.lt, zx, x, w_.in_proj, R, s_.hidden, proj, run.stream);
    conv1d_forward(pre, zx + I, proj, w_.conv_w, w_.conv_b, run.doc, run.batch, run.seq, conv, s_.conv_kernel,
                   run.stream);
    silu_forward(xbc, pre, R * conv, run.stream);
    mamba_time_step(dt, zx + I + conv, proj, w_.dt_bias, R, H, s_.dt_min, run.stream);
    mamba_scan_params(A, D, w_.A_log, w_.D, H, run.stream);
    const SsdInputs in{xbc, xbc + I, xbc + I + G * N, conv, dt, A, D, run.doc};
    ssd_forward(shape, in, scan, states, run.stream);
    gated_rmsnorm_forward(normed, rstd, scan, zx, proj, w_.norm, R, I, I / G, s_.eps, run.stream);
    linear_forward(*run.lt, y, normed, w_.out_proj, R, I, s_.hidden, run.stream);
  }

 private:
  Mamba2Dims s_;
  Mamba2Weights w_;
  DeviceBuffer<bf16> zx_, pre_, xbc_, scan_, normed_;
  DeviceBuffer<float> dt_, A_, D_, rstd_, states_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_mamba2(const Mamba2Dims& dims, const Mamba2Weights& w) {
  return std::make_unique<GpuMamba2>(dims, w);
}

}  // namespace nemokit::rt::cuda
