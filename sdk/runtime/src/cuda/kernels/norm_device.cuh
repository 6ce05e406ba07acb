// Device helpers of the norm family's kernels (included only by .cu files): bf16 vector loads and
// stores, warp and block sums.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace nemokit::rt::cuda::norm_detail {

constexpr unsigned kFullMask = 0xffffffffu;

// V consecutive bf16 values as fp32. V = 8 is one 16-byte load (the caller guarantees the
// address is 16-byte aligned); V = 1 is the fallback for shapes that are not multiples of 8.
template <int V>
__device__ __forceinline__ void load_bf16(const __nv_bfloat16* p, float* out) {
  if constexpr (V == 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 f = __bfloat1622float2(h[k]);
      out[2 * k] = f.x;
      out[2 * k + 1] = f.y;
    }
  } else {
    static_assert(V == 1, "vector width 8 or 1");
    out[0] = __bfloat162float(*p);
  }
}

template <int V>
__device__ __forceinline__ void store_bf16(__nv_bfloat16* p, const float* in) {
  if constexpr (V == 8) {
    uint4 raw;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(in[2 * k], in[2 * k + 1]);  // .x = lower address
    *reinterpret_cast<uint4*>(p) = raw;
  } else {
    static_assert(V == 1, "vector width 8 or 1");
    *p = __float2bfloat16_rn(in[0]);
  }
}

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// silu and its derivative in fp32 (expf, not __expf: these kernels are memory-bound).
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu(float x) { return x * sigmoid(x); }
__device__ __forceinline__ float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

// Butterfly sum: every lane ends with the same value (a + b == b + a at each level).
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Sum over the block; blockDim.x a multiple of 32, at most 1024; every thread gets the same value
// (each sums the warps' partials in the same order). `scratch`: 32 values of shared memory. The
// second barrier lets the next call reuse scratch.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T total = 0;
  const int warps = int(blockDim.x >> 5);
  for (int i = 0; i < warps; ++i) total += scratch[i];
  __syncthreads();
  return total;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace nemokit::rt::cuda::norm_detail
