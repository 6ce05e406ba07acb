// Embedding lookup and its gradient. One block per row (token); threads stride over the features
// in 16-byte words (8 bf16) when C is a multiple of 8 and the pointers are aligned.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "norm.cuh"
#include "norm_device.cuh"

namespace nemokit::rt::cuda {
namespace {

using namespace norm_detail;

// Threads per block: one 16-byte word (or value) each, at most 256, a whole number of warps.
int threads_for(int64_t C, int V) { return int(std::clamp<int64_t>((C / V + 31) / 32 * 32, 32, 256)); }

template <int V>
__global__ void embedding_forward_kernel(__nv_bfloat16* out, const int32_t* ids, const __nv_bfloat16* table,
                                         int64_t vocab, int64_t C, int32_t* bad_id) {
  const int64_t r = blockIdx.x;
  const int32_t id = ids[r];
  const bool ok = id >= 0 && id < vocab;
  if (!ok && bad_id && threadIdx.x == 0) *bad_id = 1;
  const __nv_bfloat16* src = table + (ok ? int64_t(id) * C : 0);
  __nv_bfloat16* dst = out + r * C;
  for (int64_t c = int64_t(threadIdx.x) * V; c < C; c += int64_t(blockDim.x) * V) {
    if constexpr (V == 8) {
      *reinterpret_cast<uint4*>(dst + c) = ok ? *reinterpret_cast<const uint4*>(src + c) : make_uint4(0, 0, 0, 0);
    } else {
      dst[c] = ok ? src[c] : __float2bfloat16_rn(0.0f);
    }
  }
}

// V = 8: two 4-wide fp32 atomics (sm_90's vector atomicAdd, 16-byte aligned) per 8 values.
template <int V>
__global__ void embedding_backward_kernel(float* dtable, const __nv_bfloat16* dout, const int32_t* ids,
                                          int64_t vocab, int64_t C) {
  const int64_t r = blockIdx.x;
  const int32_t id = ids[r];
  if (id < 0 || id >= vocab) return;  // uniform across the block
  float* dst = dtable + int64_t(id) * C;
  const __nv_bfloat16* src = dout + r * C;
  for (int64_t c = int64_t(threadIdx.x) * V; c < C; c += int64_t(blockDim.x) * V) {
    float f[V];
    load_bf16<V>(src + c, f);
    if constexpr (V == 8) {
      atomicAdd(reinterpret_cast<float4*>(dst + c), make_float4(f[0], f[1], f[2], f[3]));
      atomicAdd(reinterpret_cast<float4*>(dst + c + 4), make_float4(f[4], f[5], f[6], f[7]));
    } else {
      atomicAdd(dst + c, f[0]);
    }
  }
}

void check_rows(const char* op, int64_t rows, int64_t C) {
  if (rows < 0 || rows > int64_t(INT32_MAX) || C <= 0)
    throw std::invalid_argument(std::string(op) + ": rows " + std::to_string(rows) + ", C " + std::to_string(C) +
                                ": need 0 <= rows < 2^31 and C > 0");
}

}  // namespace

void embedding_forward(__nv_bfloat16* out, const int32_t* ids, const __nv_bfloat16* table, int64_t rows, int64_t vocab,
                       int64_t C, int32_t* bad_id, cudaStream_t stream) {
  check_rows("embedding_forward", rows, C);
  if (rows == 0) return;
  if (C % 8 == 0 && aligned16(out) && aligned16(table)) {
    NEMOKIT_LAUNCH(unsigned(rows), threads_for(C, 8), 0, stream, embedding_forward_kernel<8>)(out, ids, table, vocab, C, bad_id);
  } else {
    NEMOKIT_LAUNCH(unsigned(rows), threads_for(C, 1), 0, stream, embedding_forward_kernel<1>)(out, ids, table, vocab, C, bad_id);
  }
  NEMOKIT_CUDA_LAUNCHED("embedding_forward_kernel");
}

void embedding_backward(float* dtable, const __nv_bfloat16* dout, const int32_t* ids, int64_t rows, int64_t vocab,
                        int64_t C, cudaStream_t stream) {
  check_rows("embedding_backward", rows, C);
  if (rows == 0) return;
  if (C % 8 == 0 && aligned16(dtable) && aligned16(dout)) {
    NEMOKIT_LAUNCH(unsigned(rows), threads_for(C, 8), 0, stream, embedding_backward_kernel<8>)(dtable, dout, ids, vocab, C);
  } else {
    NEMOKIT_LAUNCH(unsigned(rows), threads_for(C, 1), 0, stream, embedding_backward_kernel<1>)(dtable, dout, ids, vocab, C);
  }
  NEMOKIT_CUDA_LAUNCHED("embedding_backward_kernel");
}

}  // namespace nemokit::rt::cuda
