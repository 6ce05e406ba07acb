// LoraPath (mixers.hpp): a projection's LoRA adapter on the GPU, in the products of matmul.cuh.
// The scale rides on u (forward) and on du (backward), so no pass of its own touches y or dx.
#include "cuda_check.cuh"
#include "mixers.hpp"

namespace nemokit::rt::cuda {

void LoraPath::forward(const MixerRun& run, bf16* y, const bf16* x, int64_t in, int64_t out) {
  if (w_.rank == 0) return;
  const int64_t R = run.rows, r = w_.rank;
  bf16* u = u_.reserve(size_t(R * r));
  linear_forward_scaled(*run.lt, u, x, w_.A, R, in, r, w_.scale, false, run.stream);
  linear_forward_scaled(*run.lt, y, u, w_.B, R, r, out, 1.0f, true, run.stream);
}

void LoraPath::backward(const MixerRun& run, bf16* dx, const bf16* dy, const bf16* x, int64_t in, int64_t out) {
  if (w_.rank == 0) return;
  const int64_t R = run.rows, r = w_.rank;
  const bf16* u = u_.get();
  // dB [out, r] += dy^T u;  du [R, r] = scale * dy B
  bf16* du = du_.reserve(size_t(R * r));
  NEMOKIT_CUDA_CHECK(cudaMemsetAsync(du, 0, sizeof(bf16) * size_t(R * r), run.stream));
  if (w_.dB) linear_backward(*run.lt, nullptr, w_.dB, dy, u, w_.B, R, r, out, run.stream);
  linear_backward(*run.lt, du, nullptr, dy, u, w_.B, R, r, out, run.stream, w_.scale);
  // dA [r, in] += du^T x;  dx [R, in] += du A
  linear_backward(*run.lt, dx, w_.dA, du, x, w_.A, R, in, r, run.stream);
}

}  // namespace nemokit::rt::cuda
