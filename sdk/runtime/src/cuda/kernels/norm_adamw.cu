// AdamW step, gradient sum of squares and clipping, on flat fp32 arrays. Memory-bound: the step
// reads w, m, v, g and writes w, m, v and the bf16 weights in one pass (4-wide fp32 accesses
// when the arrays are 16-byte aligned), with grid-stride loops over a capped grid.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "norm.cuh"
#include "norm_device.cuh"

namespace nemokit::rt::cuda {
namespace {

using namespace norm_detail;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond: several waves of a 132-SM device

unsigned blocks_for(int64_t n) { return unsigned(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks)); }

struct AdamWConsts {
  float lr, b1, b2, one_minus_b1, one_minus_b2, c1, c2, eps, decay;
};

// src/optim/adamw_update.hpp's loop body, operation for operation, with the rounding spelled out
// (no fused multiply-adds), so that it gives the CPU's bits:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g g;  w -= d w;  w -= lr (m/c1) / (sqrt(v/c2) + eps)
__device__ __forceinline__ void adamw_element(const AdamWConsts& k, float& w, float& m, float& v, float g) {
  m = __fadd_rn(__fmul_rn(k.b1, m), __fmul_rn(k.one_minus_b1, g));
  v = __fadd_rn(__fmul_rn(k.b2, v), __fmul_rn(__fmul_rn(k.one_minus_b2, g), g));
  w = __fsub_rn(w, __fmul_rn(k.decay, w));
  w = __fsub_rn(w, __fdiv_rn(__fmul_rn(k.lr, __fdiv_rn(m, k.c1)), __fadd_rn(__fsqrt_rn(__fdiv_rn(v, k.c2)), k.eps)));
}

// Vec: w, m, v, g 16-byte aligned and wb (if any) 8-byte aligned; the n % 4 tail is scalar.
template <bool Vec>
__global__ void __launch_bounds__(kThreads) adamw_kernel(float* w, float* m, float* v, __nv_bfloat16* wb,
                                                         const float* g, int64_t n, AdamWConsts k,
                                                         const float* grad_scale) {
  const float scale = grad_scale ? *grad_scale : 1.0f;  // x * 1.0f is x: same bits unclipped
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if constexpr (Vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = first; i < n4; i += stride) {
      float4 W = reinterpret_cast<float4*>(w)[i], M = reinterpret_cast<float4*>(m)[i],
             V = reinterpret_cast<float4*>(v)[i];
      const float4 G = reinterpret_cast<const float4*>(g)[i];
      adamw_element(k, W.x, M.x, V.x, __fmul_rn(G.x, scale));
      adamw_element(k, W.y, M.y, V.y, __fmul_rn(G.y, scale));
      adamw_element(k, W.z, M.z, V.z, __fmul_rn(G.z, scale));
      adamw_element(k, W.w, M.w, V.w, __fmul_rn(G.w, scale));
      reinterpret_cast<float4*>(w)[i] = W;
      reinterpret_cast<float4*>(m)[i] = M;
      reinterpret_cast<float4*>(v)[i] = V;
      if (wb) {
        uint2 packed;
        reinterpret_cast<__nv_bfloat162*>(&packed)[0] = __floats2bfloat162_rn(W.x, W.y);
        reinterpret_cast<__nv_bfloat162*>(&packed)[1] = __floats2bfloat162_rn(W.z, W.w);
        reinterpret_cast<uint2*>(wb)[i] = packed;
      }
    }
    done = n4 * 4;
  }
  for (int64_t i = done + first; i < n; i += stride) {
    float W = w[i], M = m[i], V = v[i];
    adamw_element(k, W, M, V, __fmul_rn(g[i], scale));
    w[i] = W, m[i] = M, v[i] = V;
    if (wb) wb[i] = __float2bfloat16_rn(W);
  }
}

// Each thread sums its grid-stride share in double, then the block; partials[block] += the sum.
// The grid is a function of n alone, so the order is fixed.
template <bool Vec>
__global__ void __launch_bounds__(kThreads) sum_squares_kernel(double* partials, const float* x, int64_t n) {
  __shared__ double scratch[32];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  double acc = 0.0;
  int64_t done = 0;
  if constexpr (Vec) {
    const int64_t n4 = n / 4;
    for (int64_t i = first; i < n4; i += stride) {
      const float4 f = reinterpret_cast<const float4*>(x)[i];
      acc += double(f.x) * f.x + double(f.y) * f.y + double(f.z) * f.z + double(f.w) * f.w;
    }
    done = n4 * 4;
  }
  for (int64_t i = done + first; i < n; i += stride) acc += double(x[i]) * x[i];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] += acc;
}

__global__ void __launch_bounds__(kSumSquaresPartials) sum_squares_finish_kernel(double* out, const double* partials) {
  __shared__ double scratch[32];
  const double total = block_sum(partials[threadIdx.x], scratch);
  if (threadIdx.x == 0) *out = total;
}

__global__ void grad_clip_scale_kernel(float* scale, const double* sumsq, double max_norm) {
  const double norm = sqrt(*sumsq);
  *scale = max_norm > 0 && norm > max_norm ? float(max_norm / (norm + 1e-6)) : 1.0f;
}

__global__ void __launch_bounds__(kThreads) scale_kernel(float* x, int64_t n, const float* scale) {
  const float s = *scale;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = __fmul_rn(x[i], s);
}

bool aligned8(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 7) == 0; }

}  // namespace

void adamw_step(float* master, float* m, float* v, __nv_bfloat16* weights_bf16, const float* grad, int64_t n,
                const AdamWHyper& h, const float* grad_scale, cudaStream_t stream) {
  if (n < 0 || h.step < 1)
    throw std::invalid_argument("adamw_step: n " + std::to_string(n) + ", step " + std::to_string(h.step) +
                                ": need n >= 0 and step >= 1");
  if (n == 0) return;
  // The constants as the CPU's AdamWStep and adamw_update compute them (float pow, float products).
  AdamWConsts k{};
  k.lr = h.lr, k.b1 = h.beta1, k.b2 = h.beta2, k.eps = h.eps;
  k.one_minus_b1 = 1.0f - h.beta1, k.one_minus_b2 = 1.0f - h.beta2;
  k.c1 = 1.0f - std::pow(h.beta1, float(h.step));
  k.c2 = 1.0f - std::pow(h.beta2, float(h.step));
  k.decay = h.lr * h.weight_decay;
  const bool vec = aligned16(master) && aligned16(m) && aligned16(v) && aligned16(grad) && aligned8(weights_bf16);
  if (vec) {
    NEMOKIT_LAUNCH(blocks_for(n / 4), kThreads, 0, stream, adamw_kernel<true>)
    (master, m, v, weights_bf16, grad, n, k, grad_scale);
  } else {
    NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, adamw_kernel<false>)(master, m, v, weights_bf16, grad, n, k, grad_scale);
  }
  NEMOKIT_CUDA_LAUNCHED("adamw_kernel");
}

void sum_squares_partial(double* partials, const float* x, int64_t n, cudaStream_t stream) {
  if (n < 0) throw std::invalid_argument("sum_squares_partial: n < 0");
  if (n == 0) return;
  const unsigned blocks = unsigned(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kSumSquaresPartials));
  if (aligned16(x)) {
    NEMOKIT_LAUNCH(blocks, kThreads, 0, stream, sum_squares_kernel<true>)(partials, x, n);
  } else {
    NEMOKIT_LAUNCH(blocks, kThreads, 0, stream, sum_squares_kernel<false>)(partials, x, n);
  }
  NEMOKIT_CUDA_LAUNCHED("sum_squares_kernel");
}

void sum_squares_finish(double* out, const double* partials, cudaStream_t stream) {
  NEMOKIT_LAUNCH(1, kSumSquaresPartials, 0, stream, sum_squares_finish_kernel)(out, partials);
  NEMOKIT_CUDA_LAUNCHED("sum_squares_finish_kernel");
}

void grad_clip_scale(float* scale, const double* sumsq, double max_norm, cudaStream_t stream) {
  NEMOKIT_LAUNCH(1, 1, 0, stream, grad_clip_scale_kernel)(scale, sumsq, max_norm);
  NEMOKIT_CUDA_LAUNCHED("grad_clip_scale_kernel");
}

void scale_inplace(float* x, int64_t n, const float* scale, cudaStream_t stream) {
  if (n < 0) throw std::invalid_argument("scale_inplace: n < 0");
  if (n == 0) return;
  NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, scale_kernel)(x, n, scale);
  NEMOKIT_CUDA_LAUNCHED("scale_kernel");
}

}  // namespace nemokit::rt::cuda
