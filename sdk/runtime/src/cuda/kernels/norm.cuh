// Memory-bound kernels of the hybrid model: embedding, RMSNorm (plain, fused with the residual
// add, and Mamba's gated form) and the AdamW step with the gradient norm and clipping. Each reads
// and writes its tensors once where the CPU path makes several passes: the residual add and the
// next norm, and Mamba's gate, norm and weight, are one kernel each; AdamW writes the bf16 copy
// of the weights in the same pass as the fp32 master.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nemokit::rt::cuda {

// ---- embedding ----
// out[r, :] = table[ids[r], :]. An id outside [0, vocab) gives a row of zeros and, when
// `bad_id` is not null, sets *bad_id to 1 (the CPU kernel throws; a kernel cannot, so the caller
// checks the flag at its next synchronization).
void embedding_forward(__nv_bfloat16* out, const int32_t* ids, const __nv_bfloat16* table, int64_t rows, int64_t vocab,
                       int64_t C, int32_t* bad_id, cudaStream_t stream);
// dtable[ids[r], :] += dout[r, :] by fp32 atomics: each dout value is read once and added where it
// belongs (L2 resolves the adds; only repeated ids contend), with no sort and no workspace. The
// price: the sum for an id repeated in the batch is in a run-dependent order (not bitwise
// reproducible, unlike the CPU's serial loop). Rows whose id is outside [0, vocab) are skipped.
void embedding_backward(float* dtable, const __nv_bfloat16* dout, const int32_t* ids, int64_t rows, int64_t vocab,
                        int64_t C, cudaStream_t stream);

// ---- RMSNorm over groups of `group` features (C a multiple of group, group <= 16384):
//      y = w * x / sqrt(mean(x^2) + eps); rstd [rows, C / group] fp32 ----
void rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows,
                     int64_t C, int64_t group, float eps, cudaStream_t stream);

// The backward reduces dw in two stages: per-block partial sums over a strided subset of rows
// (in registers, fixed order) into `workspace`, then one pass adds the partials into dw in block
// order, so dw is the same bits from run to run. workspace: at least
// rmsnorm_backward_workspace_bytes(...) bytes on the stream's device, or null to have the
// launcher take it from the stream-ordered allocator (cudaMallocAsync) and free it after use.
size_t rmsnorm_backward_workspace_bytes(int64_t rows, int64_t C, int64_t group);
// dx += d/dx, dw += d/dw (either may be null), as kernels::rmsnorm_backward.
void rmsnorm_backward(__nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                      const __nv_bfloat16* w, const float* rstd, int64_t rows, int64_t C, int64_t group,
                      void* workspace, cudaStream_t stream);

// The block's residual add and the next layer's norm in one pass:
//   h_out = h + delta (rounded to bf16: what the residual stream holds), y = RMSNorm(h_out).
// delta may be null (h_out = h); h_out may be h itself (in place).
void residual_rmsnorm_forward(__nv_bfloat16* h_out, __nv_bfloat16* y, float* rstd, const __nv_bfloat16* h,
                              const __nv_bfloat16* delta, const __nv_bfloat16* w, int64_t rows, int64_t C,
                              int64_t group, float eps, cudaStream_t stream);

// Mamba2's gated norm: y = w * RMSNorm_grouped(x * silu(z)). x and y are [rows, C] contiguous;
// z (and dz) are read (written) with their own row stride, since z is a column range of the
// in_proj output. The gated product stays in fp32 registers (never stored); the backward
// recomputes it from x and z.
void gated_rmsnorm_forward(__nv_bfloat16* y, float* rstd, const __nv_bfloat16* x, const __nv_bfloat16* z,
                           int64_t z_stride, const __nv_bfloat16* w, int64_t rows, int64_t C, int64_t group, float eps,
                           cudaStream_t stream);
// dx += ..., dz += ..., dw += ... (each may be null); workspace as rmsnorm_backward's.
size_t gated_rmsnorm_backward_workspace_bytes(int64_t rows, int64_t C, int64_t group);
void gated_rmsnorm_backward(__nv_bfloat16* dx, __nv_bfloat16* dz, int64_t dz_stride, float* dw,
                            const __nv_bfloat16* dy, const __nv_bfloat16* x, const __nv_bfloat16* z, int64_t z_stride,
                            const __nv_bfloat16* w, const float* rstd, int64_t rows, int64_t C, int64_t group,
                            void* workspace, cudaStream_t stream);

// ---- optimizer ----
struct AdamWHyper {
  float lr, beta1, beta2, eps;
  // The parameter's decay factor: the config's weight_decay for a tensor that takes decay, 0 for
  // one that does not (the caller decides per tensor, as Parameter::decay on the CPU).
  float weight_decay;
  int64_t step;  // 1 at the first update (bias corrections 1 - beta^step)
};
// One AdamW step over n elements, the CPU optimizer's formula (src/optim/adamw_update.hpp):
//   g *= *grad_scale (when not null: the clipping factor, grad_clip_scale's output)
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  w -= lr*wd*w;  w -= lr (m/c1) / (sqrt(v/c2) + eps)
// master, m, v fp32 updated in place; weights_bf16 (may be null) gets bf16(w) in the same pass.
// grad is only read (the scale is applied to the value read, not stored).
void adamw_step(float* master, float* m, float* v, __nv_bfloat16* weights_bf16, const float* grad, int64_t n,
                const AdamWHyper& hyper, const float* grad_scale, cudaStream_t stream);

// Sum of squares in double, two stages and a fixed order (the same bits from run to run):
// sum_squares_partial adds each block's sum into partials[block] (kSumSquaresPartials doubles,
// zeroed by the caller once), so every gradient tensor of the model is accumulated into one
// array; sum_squares_finish writes *out = the sum of the partials.
inline constexpr int kSumSquaresPartials = 1024;
void sum_squares_partial(double* partials, const float* x, int64_t n, cudaStream_t stream);
void sum_squares_finish(double* out, const double* partials, cudaStream_t stream);
// Clipping without a host round trip: *scale = max_norm / (norm + 1e-6) when max_norm > 0 and
// norm = sqrt(*sumsq) > max_norm, else 1 (clip_grad_norm_to's rule).
void grad_clip_scale(float* scale, const double* sumsq, double max_norm, cudaStream_t stream);
// x *= *scale (a device value, so the clip needs no host synchronization).
void scale_inplace(float* x, int64_t n, const float* scale, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
