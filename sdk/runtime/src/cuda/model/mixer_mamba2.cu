// Mamba2 mixer (Mamba2Mixer's forward):
//   [z | xBC | dt] = in_proj(x); xBC = silu(causal_conv1d(xBC) + b); dt = max(softplus(dt +
//   dt_bias), time_step_min); A = -exp(A_log); y = SSD(x, dt, A, B, C) + D x;
//   out = out_proj(w * grouped_rmsnorm(y * silu(z))).
// z, xBC and dt stay column ranges of the one in_proj output (the conv, the time step and the
// gated norm read them with its row stride), so nothing is split or copied.
#include "cuda_check.cuh"
#include "elementwise.cuh"
#include "glue.cuh"
#include "mamba.cuh"
#include "mixers.hpp"
#include "norm.cuh"

namespace nemokit::rt::cuda {
namespace {

class GpuMamba2 : public GpuMixer {
 public:
  GpuMamba2(const Mamba2Dims& dims, const Mamba2Weights& w, const Mamba2Grads& g)
      : s_(dims), w_(w), g_(g), lora_in_(w.lora_in_proj), lora_out_(w.lora_out_proj) {}

  void forward(const MixerRun& run, const bf16* x, bf16* y) override {
    const int64_t R = run.rows, I = s_.d_inner(), conv = s_.conv_dim(), proj = s_.in_proj_dim();
    const int64_t H = s_.heads, G = s_.groups, N = s_.state;
    const SsdShape shape = ssd_shape(run);
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
    lora_in_.forward(run, zx, x, s_.hidden, proj);
    conv1d_forward(pre, zx + I, proj, w_.conv_w, w_.conv_b, run.doc, run.batch, run.seq, conv, s_.conv_kernel,
                   run.stream);
    silu_forward(xbc, pre, R * conv, run.stream);
    mamba_time_step(dt, zx + I + conv, proj, w_.dt_bias, R, H, s_.dt_min, run.stream);
    mamba_scan_params(A, D, w_.A_log, w_.D, H, run.stream);
    ssd_forward(shape, ssd_inputs(run), scan, states, run.stream);
    gated_rmsnorm_forward(normed, rstd, scan, zx, proj, w_.norm, R, I, I / G, s_.eps, run.stream);
    linear_forward(*run.lt, y, normed, w_.out_proj, R, I, s_.hidden, run.stream);
    lora_out_.forward(run, y, normed, I, s_.hidden);
  }

  // Mamba2Mixer::backward: out_proj, the gated norm (into the scan's and z's gradients), the
  // scan (fp32 xBC, dt, A and D gradients), the time step, the conv's SiLU and the conv (into
  // in_proj's output gradient, whose three column ranges every step writes), then in_proj.
  void backward(const MixerRun& run, const bf16* x, const bf16* dy, bf16* dx) override {
    const int64_t R = run.rows, I = s_.d_inner(), conv = s_.conv_dim(), proj = s_.in_proj_dim();
    const int64_t H = s_.heads, G = s_.groups, N = s_.state;
    const SsdShape shape = ssd_shape(run);
    bf16* dnormed = dnormed_.reserve(R * I);
    bf16* dscan = dscan_.reserve(R * I);
    bf16* dzx = dzx_.reserve(R * proj);
    bf16* dpre = dpre_.reserve(R * conv);
    float* dxbc = dxbc_.reserve(R * conv);
    float* ddt = ddt_.reserve(R * H);
    float* dA = dA_.reserve(2 * H);
    float* dD = dA + H;
    // Added into: zeroed first (dzx's dt columns and dpre are written whole, but one memset of
    // dzx is simpler than three of its column ranges).
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dnormed, 0, sizeof(bf16) * R * I, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dscan, 0, sizeof(bf16) * R * I, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dzx, 0, sizeof(bf16) * R * proj, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dxbc, 0, sizeof(float) * R * conv, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(ddt, 0, sizeof(float) * R * H, run.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dA, 0, sizeof(float) * 2 * H, run.stream));

    linear_backward(*run.lt, dnormed, g_.out_proj, dy, normed_.get(), w_.out_proj, R, I, s_.hidden, run.stream);
    lora_out_.backward(run, dnormed, dy, normed_.get(), I, s_.hidden);
    void* norm_ws = norm_ws_.reserve(gated_rmsnorm_backward_workspace_bytes(R, I, I / G));
    gated_rmsnorm_backward(dscan, dzx, proj, g_.norm, dnormed, scan_.get(), zx_.get(), proj, w_.norm, rstd_.get(), R,
                           I, I / G, norm_ws, run.stream);
    const SsdGrads grads{dxbc, dxbc + I, dxbc + I + G * N, ddt, dA, dD};
    void* ssd_ws = ssd_ws_.reserve(ssd_backward_workspace_bytes(shape));
    ssd_backward(shape, ssd_inputs(run), states_.get(), dscan, grads, ssd_ws, run.stream);
    mamba_scan_params_backward(g_.A_log, g_.D, dA, dD, A_.get(), H, run.stream);
    mamba_time_step_backward(dzx + I + conv, proj, g_.dt_bias, ddt, zx_.get() + I + conv, proj, w_.dt_bias, R, H,
                             s_.dt_min, run.stream);
    silu_backward_to_bf16(dpre, dxbc, pre_.get(), R * conv, run.stream);
    void* conv_ws = conv_ws_.reserve(conv1d_backward_workspace_bytes(run.batch, run.seq, conv, s_.conv_kernel));
    conv1d_backward(dzx + I, proj, g_.conv_w, g_.conv_b, dpre, zx_.get() + I, proj, w_.conv_w, run.doc, run.batch,
                    run.seq, conv, s_.conv_kernel, conv_ws, run.stream);
    linear_backward(*run.lt, dx, g_.in_proj, dzx, x, w_.in_proj, R, s_.hidden, proj, run.stream);
    lora_in_.backward(run, dx, dzx, x, s_.hidden, proj);
  }

 private:
  SsdShape ssd_shape(const MixerRun& run) const {
    return SsdShape{run.batch, run.seq, s_.heads, s_.head_dim, s_.groups, s_.state, s_.chunk};
  }
  // The scan reads x, B and C as column ranges of the conv's output rows.
  SsdInputs ssd_inputs(const MixerRun& run) const {
    const int64_t I = s_.d_inner(), GN = s_.groups * s_.state;
    const bf16* xbc = xbc_.get();
    return SsdInputs{xbc, xbc + I, xbc + I + GN, s_.conv_dim(), dt_.get(), A_.get(), D_.get(), run.doc};
  }

  Mamba2Dims s_;
  Mamba2Weights w_;
  Mamba2Grads g_;
  LoraPath lora_in_, lora_out_;
  DeviceBuffer<bf16> zx_, pre_, xbc_, scan_, normed_;
  DeviceBuffer<float> dt_, A_, D_, rstd_, states_;
  DeviceBuffer<bf16> dnormed_, dscan_, dzx_, dpre_;
  DeviceBuffer<float> dxbc_, ddt_, dA_;
  DeviceBuffer<unsigned char> norm_ws_, ssd_ws_, conv_ws_;
};

}  // namespace

std::unique_ptr<GpuMixer> make_gpu_mamba2(const Mamba2Dims& dims, const Mamba2Weights& w, const Mamba2Grads& g) {
  return std::make_unique<GpuMamba2>(dims, w, g);
}

}  // namespace nemokit::rt::cuda
