#include <initializer_list>

#include "cuda_check.cuh"
#include "elementwise.cuh"
#include "norm_device.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return int((n + kThreads - 1) / kThreads); }

__global__ void relu2_forward_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = fmaxf(__bfloat162float(x[i]), 0.0f);
  y[i] = __float2bfloat16(v * v);
}

__global__ void relu2_backward_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                                      int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = fmaxf(__bfloat162float(x[i]), 0.0f);
  dx[i] = __float2bfloat16(__bfloat162float(dx[i]) + 2.0f * v * __bfloat162float(dy[i]));
}

// SiLU: 8 values (one 16-byte word) per thread when n is a multiple of 8 and the pointers are
// aligned, else one; fp32 math on bf16 in and out.
template <int V>
__global__ void silu_forward_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i >= n) return;
  float v[V];
  norm_detail::load_bf16<V>(x + i, v);
#pragma unroll
  for (int k = 0; k < V; ++k) v[k] = norm_detail::silu(v[k]);
  norm_detail::store_bf16<V>(y + i, v);
}

template <int V>
__global__ void silu_backward_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (i >= n) return;
  float xv[V], dyv[V], dxv[V];
  norm_detail::load_bf16<V>(x + i, xv);
  norm_detail::load_bf16<V>(dy + i, dyv);
  norm_detail::load_bf16<V>(dx + i, dxv);
#pragma unroll
  for (int k = 0; k < V; ++k) dxv[k] += dyv[k] * norm_detail::silu_grad(xv[k]);
  norm_detail::store_bf16<V>(dx + i, dxv);
}

bool vectorizable(int64_t n, std::initializer_list<const void*> ptrs) {
  if (n % 8) return false;
  for (const void* p : ptrs)
    if (!norm_detail::aligned16(p)) return false;
  return true;
}

}  // namespace

void silu_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (vectorizable(n, {y, x}))
    NEMOKIT_LAUNCH(blocks_for(n / 8), kThreads, 0, stream, silu_forward_kernel<8>)(y, x, n);
  else
    NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, silu_forward_kernel<1>)(y, x, n);
  NEMOKIT_CUDA_LAUNCHED("silu_forward_kernel");
}

void silu_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n,
                   cudaStream_t stream) {
  if (n == 0) return;
  if (vectorizable(n, {dx, dy, x}))
    NEMOKIT_LAUNCH(blocks_for(n / 8), kThreads, 0, stream, silu_backward_kernel<8>)(dx, dy, x, n);
  else
    NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, silu_backward_kernel<1>)(dx, dy, x, n);
  NEMOKIT_CUDA_LAUNCHED("silu_backward_kernel");
}

void relu2_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, relu2_forward_kernel)(y, x, n);
  NEMOKIT_CUDA_LAUNCHED("relu2_forward_kernel");
}

void relu2_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return;
  NEMOKIT_LAUNCH(blocks_for(n), kThreads, 0, stream, relu2_backward_kernel)(dx, dy, x, n);
  NEMOKIT_CUDA_LAUNCHED("relu2_backward_kernel");
}

}  // namespace nemokit::rt::cuda
