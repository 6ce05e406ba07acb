// Small elementwise kernels that join the kernel families into the model's forward: Mamba's time
// step and scan parameters, and the loss totals. Each is one pass over a small tensor.
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

// totals[0] = sum of row_loss, totals[1] = count of targets >= 0, totals[2] = sum of
// row_weight * row_loss (0 without weights): in double, in a fixed order (one block), so the
// same inputs give the same bits. WRITTEN.
void loss_totals(double* totals, const float* row_loss, const int32_t* targets, const float* row_weight,
                 int64_t rows, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
