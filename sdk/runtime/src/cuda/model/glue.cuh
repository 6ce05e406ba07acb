// Small elementwise kernels that join the kernel families into the model's passes: Mamba's time
// step and scan parameters and their backward, the loss totals, conversions. Each is one pass
// over a small tensor (the model check, tests/gpu/check_model.cpp, covers them).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace nemokit::rt::cuda {

// dt[r, h] = max(softplus(raw[r * raw_stride + h] + dt_bias[h]), dt_min) in fp32, as
// Mamba2Mixer::time_step (torch's softplus threshold 20; the clamp of transformers' CPU path).
// raw is the dt column range of in_proj's output.
void mamba_time_step(float* dt, const __nv_bfloat16* raw, int64_t raw_stride, const __nv_bfloat16* dt_bias,
                     int64_t rows, int64_t heads, float dt_min, cudaStream_t stream);

// The scan's fp32 per-head parameters from the bf16 weights: A = -exp(A_log), D as is.
void mamba_scan_params(float* A, float* D, const __nv_bfloat16* A_log, const __nv_bfloat16* D_weight, int64_t heads,
                       cudaStream_t stream);

// The time step's backward, as Mamba2Mixer::backward: d_raw[r * d_raw_stride + h] = ddt *
// sigmoid(raw + dt_bias), 0 where the clamp at dt_min is active (WRITTEN, bf16: a column range
// of in_proj's output gradient); d_dt_bias[h] += the sum over rows (fp32, fixed order; may be
// null).
void mamba_time_step_backward(__nv_bfloat16* d_raw, int64_t d_raw_stride, float* d_dt_bias, const float* ddt,
                              const __nv_bfloat16* raw, int64_t raw_stride, const __nv_bfloat16* dt_bias,
                              int64_t rows, int64_t heads, float dt_min, cudaStream_t stream);

// d_A_log[h] += dA[h] * A[h] (A = -exp(A_log)); d_D[h] += dD[h]. Either output may be null.
void mamba_scan_params_backward(float* d_A_log, float* d_D, const float* dA, const float* dD, const float* A,
                                int64_t heads, cudaStream_t stream);

// dx = bf16(dy * silu'(x)), WRITTEN: the scan's fp32 xBC gradient through the conv's SiLU.
void silu_backward_to_bf16(__nv_bfloat16* dx, const float* dy, const __nv_bfloat16* x, int64_t n,
                           cudaStream_t stream);

// y = bf16(x), n values.
void to_bf16(__nv_bfloat16* y, const float* x, int64_t n, cudaStream_t stream);

// totals[0] = sum of row_loss, totals[1] = count of targets >= 0, totals[2] = sum of
// row_weight * row_loss (0 without weights): in double, in a fixed order (one block), so the
// same inputs give the same bits. WRITTEN.
void loss_totals(double* totals, const float* row_loss, const int32_t* targets, const float* row_weight,
                 int64_t rows, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
