// Causal depthwise conv1d of the Mamba2 mixer (kernels::conv1d_* on the GPU). One thread per
// channel, a block covers 128 consecutive channels and a tile of rows, so every load of x, dy
// and every store of y, dx is one contiguous 256-byte run per block row. The K <= 8 taps of a
// channel live in registers (loops unrolled to kMaxK with a `k < K` guard). The conv is memory
// bound and small next to the projections; bf16x2 loads would halve its instructions later.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "mamba.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 128;   // channels per block
constexpr int kMaxK = 8;        // taps held in registers
constexpr int kFwdRows = 32;    // rows per forward block
constexpr int kBwdRows = 256;   // rows per backward block: one dw/dbias partial per tile

__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

__global__ void __launch_bounds__(kThreads)
conv1d_forward_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w,
                      const __nv_bfloat16* bias, const int32_t* doc, int64_t seq, int64_t rows, int64_t channels,
                      int K) {
  const int64_t c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= channels) return;
  float wk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) wk[k] = k < K ? to_f(w[c * K + k]) : 0.0f;
  const float b0 = bias ? to_f(bias[c]) : 0.0f;
  const int64_t r0 = int64_t(blockIdx.x) * kFwdRows, r1 = min(rows, r0 + kFwdRows);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r % seq;
    const int32_t rd = doc ? doc[r] : 0;
    float acc = b0;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      if (k >= K) break;
      const int64_t j = t - K + 1 + k;  // input position of tap k
      if (j < 0) continue;
      const int64_t rj = r - t + j;
      if (doc && doc[rj] != rd) continue;  // an earlier document: reads zero
      acc += wk[k] * to_f(x[rj * x_stride + c]);
    }
    y[r * channels + c] = __float2bfloat16(acc);
  }
}

// Row r is both an output row (its dy feeds dw, dbias) and an input row (it gathers dx from the
// K outputs it feeds), so each dx element has one writer and needs no atomics. dw and dbias go
// to this tile's partial ([tile][K+1][channels], coalesced over channels).
__global__ void __launch_bounds__(kThreads)
conv1d_backward_kernel(__nv_bfloat16* dx, int64_t dx_stride, float* partial, const __nv_bfloat16* dy,
                       const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w, const int32_t* doc,
                       int64_t seq, int64_t rows, int64_t channels, int K) {
  const int64_t c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= channels) return;
  float wk[kMaxK], dwk[kMaxK];
#pragma unroll
  for (int k = 0; k < kMaxK; ++k) {
    wk[k] = k < K ? to_f(w[c * K + k]) : 0.0f;
    dwk[k] = 0.0f;
  }
  float db = 0.0f;
  const int64_t r0 = int64_t(blockIdx.x) * kBwdRows, r1 = min(rows, r0 + kBwdRows);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r % seq;
    const int32_t rd = doc ? doc[r] : 0;
    const float g = to_f(dy[r * channels + c]);
    db += g;
    float gx = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k) {
      if (k >= K) break;
      // dw: tap k of output row r read input position t-K+1+k
      const int64_t j = t - K + 1 + k;
      if (j >= 0) {
        const int64_t rj = r - t + j;
        if (!doc || doc[rj] == rd) dwk[k] += g * to_f(x[rj * x_stride + c]);
      }
      // dx: input row r fed output position t+K-1-k through tap k
      const int64_t to = t + K - 1 - k;
      if (dx && to < seq) {
        const int64_t ro = r - t + to;
        if (!doc || doc[ro] == rd) gx += wk[k] * to_f(dy[ro * channels + c]);
      }
    }
    if (dx) {
      __nv_bfloat16* d = dx + r * dx_stride + c;
      *d = __float2bfloat16(to_f(*d) + gx);
    }
  }
  if (partial) {
    float* p = partial + int64_t(blockIdx.x) * (K + 1) * channels;
#pragma unroll
    for (int k = 0; k < kMaxK; ++k)
      if (k < K) p[k * channels + c] = dwk[k];
    p[int64_t(K) * channels + c] = db;
  }
}

// Sums the tiles' partials in tile order (deterministic) and adds them into dw / dbias.
__global__ void conv1d_reduce_kernel(float* dw, float* dbias, const float* partial, int64_t tiles,
                                     int64_t channels, int K) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;  // k * channels + c
  const int64_t per_tile = int64_t(K + 1) * channels;
  if (i >= per_tile) return;
  float s = 0.0f;
  for (int64_t t = 0; t < tiles; ++t) s += partial[t * per_tile + i];
  const int64_t k = i / channels, c = i % channels;
  if (k < K) {
    if (dw) dw[c * K + k] += s;
  } else if (dbias) {
    dbias[c] += s;
  }
}

void check_conv_shape(int64_t channels, int64_t K) {
  if (K < 1 || K > kMaxK) throw std::invalid_argument("conv1d: K = " + std::to_string(K) + " (1..8 supported)");
  if ((channels + kThreads - 1) / kThreads > 65535)
    throw std::invalid_argument("conv1d: " + std::to_string(channels) + " channels exceed the grid");
}

}  // namespace

void conv1d_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w,
                    const __nv_bfloat16* bias, const int32_t* doc, int64_t batch, int64_t seq, int64_t channels,
                    int64_t K, cudaStream_t stream) {
  const int64_t rows = batch * seq;
  if (rows == 0 || channels == 0) return;
  check_conv_shape(channels, K);
  const dim3 grid(unsigned((rows + kFwdRows - 1) / kFwdRows), unsigned((channels + kThreads - 1) / kThreads));
  NEMOKIT_LAUNCH(grid, kThreads, 0, stream, conv1d_forward_kernel)(y, x, x_stride, w, bias, doc, seq, rows, channels, int(K));
  NEMOKIT_CUDA_LAUNCHED("conv1d_forward_kernel");
}

size_t conv1d_backward_workspace_bytes(int64_t batch, int64_t seq, int64_t channels, int64_t K) {
  const int64_t tiles = (batch * seq + kBwdRows - 1) / kBwdRows;
  return size_t(tiles) * size_t(K + 1) * size_t(channels) * sizeof(float);
}

void conv1d_backward(__nv_bfloat16* dx, int64_t dx_stride, float* dw, float* dbias, const __nv_bfloat16* dy,
                     const __nv_bfloat16* x, int64_t x_stride, const __nv_bfloat16* w, const int32_t* doc,
                     int64_t batch, int64_t seq, int64_t channels, int64_t K, void* workspace, cudaStream_t stream) {
  const int64_t rows = batch * seq;
  if (rows == 0 || channels == 0) return;
  check_conv_shape(channels, K);
  const bool weight_grads = dw || dbias;
  if (weight_grads && !workspace) throw std::invalid_argument("conv1d_backward: no workspace for dw/dbias");
  float* partial = weight_grads ? static_cast<float*>(workspace) : nullptr;
  const int64_t tiles = (rows + kBwdRows - 1) / kBwdRows;
  const dim3 grid(unsigned(tiles), unsigned((channels + kThreads - 1) / kThreads));
  NEMOKIT_LAUNCH(grid, kThreads, 0, stream, conv1d_backward_kernel)
  (dx, dx_stride, partial, dy, x, x_stride, w, doc, seq, rows, channels, int(K));
  NEMOKIT_CUDA_LAUNCHED("conv1d_backward_kernel");
  if (weight_grads) {
    const int64_t n = (K + 1) * channels;
    NEMOKIT_LAUNCH(unsigned((n + 255) / 256), 256, 0, stream, conv1d_reduce_kernel)(dw, dbias, partial, tiles, channels, int(K));
    NEMOKIT_CUDA_LAUNCHED("conv1d_reduce_kernel");
  }
}

}  // namespace nemokit::rt::cuda
