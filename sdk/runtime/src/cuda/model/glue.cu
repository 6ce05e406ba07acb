#include <cmath>

#include "cuda_check.cuh"
#include "glue.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return int((n + kThreads - 1) / kThreads); }

__global__ void mamba_time_step_kernel(float* dt, const __nv_bfloat16* raw, int64_t raw_stride,
                                       const __nv_bfloat16* dt_bias, int64_t rows, int64_t heads, float dt_min) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * heads) return;
  const int64_t r = i / heads, h = i % heads;
  const float x = __bfloat162float(raw[r * raw_stride + h]) + __bfloat162float(dt_bias[h]);
  const float sp = x > 20.0f ? x : log1pf(expf(x));  // accurate expf: a time step's error compounds in the scan
  dt[i] = fmaxf(sp, dt_min);
}

__global__ void mamba_scan_params_kernel(float* A, float* D, const __nv_bfloat16* A_log, const __nv_bfloat16* D_weight,
                                         int64_t heads) {
  const int64_t h = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (h >= heads) return;
  A[h] = -expf(__bfloat162float(A_log[h]));
  D[h] = __bfloat162float(D_weight[h]);
}

__global__ void mamba_time_step_backward_kernel(__nv_bfloat16* d_raw, int64_t d_raw_stride, float* d_dt_bias,
                                                const float* ddt, const __nv_bfloat16* raw, int64_t raw_stride,
                                                const __nv_bfloat16* dt_bias, int64_t rows, int64_t heads,
                                                float dt_min) {
  __shared__ float part[kThreads];
  const int64_t h = blockIdx.x;
  const float bias = __bfloat162float(dt_bias[h]);
  float sum = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    const float x = __bfloat162float(raw[r * raw_stride + h]) + bias;
    const float sp = x > 20.0f ? x : log1pf(expf(x));
    const float d = sp < dt_min ? 0.0f : ddt[r * heads + h] / (1.0f + expf(-x));
    d_raw[r * d_raw_stride + h] = __float2bfloat16(d);
    sum += d;
  }
  part[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0 && d_dt_bias) d_dt_bias[h] += part[0];
}

__global__ void mamba_scan_params_backward_kernel(float* d_A_log, float* d_D, const float* dA, const float* dD,
                                                  const float* A, int64_t heads) {
  const int64_t h = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (h >= heads) return;
  if (d_A_log) d_A_log[h] += dA[h] * A[h];
  if (d_D) d_D[h] += dD[h];
}

__global__ void silu_backward_to_bf16_kernel(__nv_bfloat16* dx, const float* dy, const __nv_bfloat16* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = __bfloat162float(x[i]);
  const float s = 1.0f / (1.0f + expf(-v));
  dx[i] = __float2bfloat16(dy[i] * s * (1.0f + v * (1.0f - s)));
}

__global__ void to_bf16_kernel(__nv_bfloat16* y, const float* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2bfloat16(x[i]);
}

// One block: thread t sums rows t, t + kThreads, ... in order, then thread 0 adds the partials in
// thread order. Rows are few (the tokens of one micro-batch), so one block is plenty.
__global__ void loss_totals_kernel(double* totals, const float* row_loss, const int32_t* targets,
                                   const float* row_weight, int64_t rows) {
  __shared__ double part[3][kThreads];
  double sum = 0, count = 0, weighted = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    sum += row_loss[r];
    count += targets[r] >= 0 ? 1.0 : 0.0;
    if (row_weight) weighted += double(row_weight[r]) * row_loss[r];
  }
  part[0][threadIdx.x] = sum, part[1][threadIdx.x] = count, part[2][threadIdx.x] = weighted;
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int j = 0; j < 3; ++j) {
    double total = 0;
    for (int t = 0; t < kThreads; ++t) total += part[j][t];
    totals[j] = total;
  }
}

}  // namespace

void mamba_time_step(float* dt, const __nv_bfloat16* raw, int64_t raw_stride, const __nv_bfloat16* dt_bias,
                     int64_t rows, int64_t heads, float dt_min, cudaStream_t stream) {
  if (rows * heads == 0) return;
  NEMOKIT_LAUNCH(blocks_for(rows * heads), kThreads, 0, stream, mamba_time_step_kernel)(dt, raw, raw_stride, dt_bias,
                                                                                         rows, heads, dt_min);
  NEMOKIT_CUDA_LAUNCHED("mamba_time_step_kernel");
}

void mamba_scan_params(float* A, float* D, const __nv_bfloat16* A_log, const __nv_bfloat16* D_weight, int64_t heads,
                       cudaStream_t stream) {
  if (heads == 0) return;
  NEMOKIT_LAUNCH(blocks_for(heads), kThreads, 0, stream, mamba_scan_params_kernel)(A, D, A_log, D_weight, heads);
  NEMOKIT_CUDA_LAUNCHED("mamba_scan_params_kernel");
}

void mamba_time_step_backward(__nv_bfloat16* d_raw, int64_t d_raw_stride, float* d_dt_bias, const float* ddt,
                              const __nv_bfloat16* raw, int64_t raw_stride, const __nv_bfloat16* dt_bias,
                              int64_t rows, int64_t heads, float dt_min, cudaStream_t stream) {
  if (rows * heads == 0) return;
  NEMOKIT_LAUNCH(int(heads), kThreads, 0, stream, mamba_time_step_backward_kernel)(
      d_raw, d_raw_stride, d_dt_bias, ddt, raw, raw_stride, dt_bias, rows, heads, dt_min);
  NEMOKIT_CUDA_LAUNCHED("mamba_time_step_backward_kernel");
}

void mamba_scan_params_backward(float* d_A_log, float* d_D, const float* dA, const float* dD, const float* A,
                                int64_t heads, cudaStream_t stream) {
  if (heads == 0 || (!d_A_log && !d_D)) return;
  NEMOKIT_LAUNCH(blocks_for(heads), kThreads, 0, stream, mamba_scan_params_backward_kernel)(d_A_log, d_D, dA, dD, A,
                                                                                             heads);
  NEMOKIT_CUDA_LAUNCHED("mamba_scan_params_backward_kernel");
}

void silu_backward_to_bf16(__nv_bfloat16* dx, const float* dy, const __nv_bfloat16* x, int64_t n,
                           cudaStream_t stream) {
  if (n == 0) return;
  NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, silu_backward_to_bf16_kernel)(dx, dy, x, n);
  NEMOKIT_CUDA_LAUNCHED("silu_backward_to_bf16_kernel");
}

void to_bf16(__nv_bfloat16* y, const float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, to_bf16_kernel)(y, x, n);
  NEMOKIT_CUDA_LAUNCHED("to_bf16_kernel");
}

void loss_totals(double* totals, const float* row_loss, const int32_t* targets, const float* row_weight,
                 int64_t rows, cudaStream_t stream) {
  NEMOKIT_LAUNCH(1, kThreads, 0, stream, loss_totals_kernel)(totals, row_loss, targets, row_weight, rows);
  NEMOKIT_CUDA_LAUNCHED("loss_totals_kernel");
}

}  // namespace nemokit::rt::cuda
