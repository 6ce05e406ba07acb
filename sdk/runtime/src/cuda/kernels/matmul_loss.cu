#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "matmul_loss.cuh"
#include "norm_device.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 256;  // one block per row; at V = 131072 each thread reads 512 logits
constexpr int kWarps = kThreads / 32;
constexpr int kSumThreads = 1024;

size_t round_up_256(size_t n) { return (n + 255) / 256 * 256; }

// Online softmax statistics: m the running max, s = sum exp(z - m). One exp per element: the sum is
// rescaled only when the max grows. m never becomes NaN (a NaN fails `v > m`) but s does, so a NaN
// logit still makes the row's loss NaN.
__device__ __forceinline__ void add_logit(float& m, float& s, float v) {
  if (v > m) {
    s = s * expf(m - v) + 1.0f;  // m = -inf at first: 0 * 0 + 1
    m = v;
  } else {
    s += expf(v - m);
  }
}

__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty (threads past the end of a short row): keep (-inf, 0)
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

// Block-wide (max, sum): a butterfly in each warp, then every warp reduces the per-warp partials
// itself, so each thread ends with the same total (merge is commutative, bit for bit) and no second
// barrier is needed. Called once per block (the shared arrays are not reused).
__device__ __forceinline__ void block_max_sum(float& m, float& s) {
  __shared__ float warp_m[kWarps], warp_s[kWarps];
  for (int off = 16; off > 0; off >>= 1)
    merge(m, s, __shfl_xor_sync(0xffffffffu, m, off), __shfl_xor_sync(0xffffffffu, s, off));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_m[warp] = m, warp_s[warp] = s;
  __syncthreads();
  m = lane < kWarps ? warp_m[lane] : -INFINITY;
  s = lane < kWarps ? warp_s[lane] : 0.0f;
  for (int off = 16; off > 0; off >>= 1)
    merge(m, s, __shfl_xor_sync(0xffffffffu, m, off), __shfl_xor_sync(0xffffffffu, s, off));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);  // .x = a at the lower address
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One block per row: pass 1 reads the row once for (max, sum exp); thread 0 writes the loss; pass 2
// reads it again (often from L2) and writes dlogits = g * softmax - g * onehot in bf16, with
// g = grad_scale * row_weight. kVec: float4 loads and 8-byte bf16x4 stores (V % 4 == 0, aligned rows).
// row_entropy (forward only, may be null): a pass for sum p (z - m), entropy = log s - that / s.
template <bool kVec>
__global__ void __launch_bounds__(kThreads)
    cross_entropy_kernel(float* row_loss, __nv_bfloat16* dlogits, float* row_entropy, const float* logits,
                         const int32_t* targets, const float* row_weight, float grad_scale, int64_t V) {
  const int64_t row = blockIdx.x;
  const int32_t t = targets[row];  // the same for the whole block: the branches below are uniform
  const float* z = logits + row * V;
  __nv_bfloat16* dz = dlogits ? dlogits + row * V : nullptr;

  if (t < 0) {  // ignored: loss 0 and a zero gradient row (written: the chunk buffer is reused)
    if (threadIdx.x == 0) {
      row_loss[row] = 0.0f;
      if (row_entropy) row_entropy[row] = 0.0f;
    }
    if (dz) {
      if constexpr (kVec) {
        for (int64_t i = threadIdx.x; i < V / 4; i += kThreads) reinterpret_cast<uint2*>(dz)[i] = make_uint2(0, 0);
      } else {
        for (int64_t i = threadIdx.x; i < V; i += kThreads) dz[i] = __float2bfloat16(0.0f);
      }
    }
    return;
  }

  float m = -INFINITY, s = 0.0f;
  if constexpr (kVec) {
    const float4* z4 = reinterpret_cast<const float4*>(z);
    for (int64_t i = threadIdx.x; i < V / 4; i += kThreads) {
      const float4 v = z4[i];
      add_logit(m, s, v.x);
      add_logit(m, s, v.y);
      add_logit(m, s, v.z);
      add_logit(m, s, v.w);
    }
  } else {
    for (int64_t i = threadIdx.x; i < V; i += kThreads) add_logit(m, s, z[i]);
  }
  block_max_sum(m, s);
  if (threadIdx.x == 0) row_loss[row] = t < V ? m + logf(s) - z[t] : NAN;  // target out of range: NaN
  if (row_entropy) {
    __shared__ float scratch[32];
    float e = 0.0f;
    for (int64_t i = threadIdx.x; i < V; i += kThreads) e += expf(z[i] - m) * (z[i] - m);
    e = norm_detail::block_sum(e, scratch);
    if (threadIdx.x == 0) row_entropy[row] = logf(s) - e / s;
  }
  if (!dz) return;

  const float g = row_weight ? grad_scale * row_weight[row] : grad_scale;
  const float scale = g / s;
  if constexpr (kVec) {
    const float4* z4 = reinterpret_cast<const float4*>(z);
    for (int64_t i = threadIdx.x; i < V / 4; i += kThreads) {
      const float4 v = z4[i];
      const int64_t j = 4 * i;
      const float d0 = expf(v.x - m) * scale - (j == t ? g : 0.0f);
      const float d1 = expf(v.y - m) * scale - (j + 1 == t ? g : 0.0f);
      const float d2 = expf(v.z - m) * scale - (j + 2 == t ? g : 0.0f);
      const float d3 = expf(v.w - m) * scale - (j + 3 == t ? g : 0.0f);
      reinterpret_cast<uint2*>(dz)[i] = make_uint2(pack_bf16x2(d0, d1), pack_bf16x2(d2, d3));
    }
  } else {
    for (int64_t i = threadIdx.x; i < V; i += kThreads)
      dz[i] = __float2bfloat16(expf(z[i] - m) * scale - (i == t ? g : 0.0f));
  }
}

// One block; each thread sums a strided slice in double, then a fixed-order reduction.
__global__ void __launch_bounds__(kSumThreads) sum_rows_kernel(float* total, const float* x, int64_t n) {
  __shared__ double partial[kSumThreads / 32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kSumThreads) acc += x[i];
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int w = 0; w < kSumThreads / 32; ++w) sum += partial[w];
    total[0] = float(sum);
  }
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

void run_chunks(BlasLt& lt, const ChunkedLoss& p, bool with_grad, float grad_scale, float* row_loss,
                float* row_entropy, float* loss_sum, __nv_bfloat16* dh, float* dw, cudaStream_t stream) {
  const char* what = with_grad ? "chunked_cross_entropy" : "chunked_cross_entropy_forward";
  if (p.rows < 0 || p.C < 0 || p.V < 0)
    throw std::invalid_argument(std::string(what) + ": negative size");
  if (p.rows == 0) {
    if (loss_sum) sum_rows(loss_sum, row_loss, 0, stream);
    return;
  }
  if (p.C == 0 || p.V == 0) throw std::invalid_argument(std::string(what) + ": C and V must be positive");
  if (!p.h || !p.w || !p.targets || !row_loss)
    throw std::invalid_argument(std::string(what) + ": h, w, targets and row_loss are required");
  int64_t chunk = p.chunk_rows > 0 ? p.chunk_rows : chunked_loss_chunk_rows(p.V, p.scratch_bytes, with_grad, p.rows);
  chunk = std::min(chunk, p.rows);
  const size_t need = chunked_loss_scratch_bytes(chunk, p.V, with_grad);
  if (!p.scratch || p.scratch_bytes < need)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(chunk) + " rows per chunk at V=" +
                                std::to_string(p.V) + " need " + std::to_string(need) +
                                " bytes of scratch, given " + std::to_string(p.scratch_bytes));
  float* logits = static_cast<float*>(p.scratch);
  __nv_bfloat16* dlogits =
      with_grad ? reinterpret_cast<__nv_bfloat16*>(static_cast<char*>(p.scratch) +
                                                   round_up_256(size_t(chunk) * size_t(p.V) * sizeof(float)))
                : nullptr;
  // Stream order makes the reuse safe: chunk i+1's logits overwrite the buffer only after chunk i's
  // products, queued before, have read dlogits.
  for (int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
    const int64_t n = std::min(chunk, p.rows - r0);
    const __nv_bfloat16* h = p.h + r0 * p.C;
    linear_forward(lt, logits, h, p.w, n, p.C, p.V, stream);
    cross_entropy(row_loss + r0, dlogits, logits, p.targets + r0, p.row_weight ? p.row_weight + r0 : nullptr,
                  grad_scale, n, p.V, stream, row_entropy ? row_entropy + r0 : nullptr);
    // dh[n,C] += dlogits[n,V] W[V,C];  dW[V,C] += dlogits^T h (fp32, beta = 1 across chunks)
    if (with_grad) linear_backward(lt, dh ? dh + r0 * p.C : nullptr, dw, dlogits, h, p.w, n, p.C, p.V, stream);
  }
  if (loss_sum) sum_rows(loss_sum, row_loss, p.rows, stream);
}

}  // namespace

void cross_entropy(float* row_loss, __nv_bfloat16* dlogits, const float* logits, const int32_t* targets,
                   const float* row_weight, float grad_scale, int64_t rows, int64_t V, cudaStream_t stream,
                   float* row_entropy) {
  if (rows <= 0) return;
  if (V <= 0) throw std::invalid_argument("cross_entropy: V must be positive");
  if (rows > INT_MAX) throw std::invalid_argument("cross_entropy: more rows than a grid holds; chunk them");
  const bool vec = V % 4 == 0 && aligned(logits, 16) && (!dlogits || aligned(dlogits, 8));
  if (vec) {
    NEMOKIT_LAUNCH(unsigned(rows), kThreads, 0, stream, cross_entropy_kernel<true>)
    (row_loss, dlogits, row_entropy, logits, targets, row_weight, grad_scale, V);
    NEMOKIT_CUDA_LAUNCHED("cross_entropy_kernel<vec>");
  } else {
    NEMOKIT_LAUNCH(unsigned(rows), kThreads, 0, stream, cross_entropy_kernel<false>)
    (row_loss, dlogits, row_entropy, logits, targets, row_weight, grad_scale, V);
    NEMOKIT_CUDA_LAUNCHED("cross_entropy_kernel");
  }
}

void sum_rows(float* total, const float* row_loss, int64_t rows, cudaStream_t stream) {
  NEMOKIT_LAUNCH(1, kSumThreads, 0, stream, sum_rows_kernel)(total, row_loss, std::max<int64_t>(rows, 0));
  NEMOKIT_CUDA_LAUNCHED("sum_rows_kernel");
}

size_t chunked_loss_scratch_bytes(int64_t chunk_rows, int64_t V, bool with_grad) {
  const size_t n = size_t(std::max<int64_t>(chunk_rows, 0)) * size_t(std::max<int64_t>(V, 0));
  return round_up_256(n * sizeof(float)) + (with_grad ? n * sizeof(__nv_bfloat16) : 0);
}

int64_t chunked_loss_chunk_rows(int64_t V, size_t budget_bytes, bool with_grad, int64_t rows) {
  const size_t per_row = size_t(std::max<int64_t>(V, 1)) * (sizeof(float) + (with_grad ? sizeof(__nv_bfloat16) : 0));
  // 256 bytes for the rounding of the logits' size (chunked_loss_scratch_bytes) stay spare.
  int64_t n = budget_bytes > 256 ? int64_t((budget_bytes - 256) / per_row) : 0;
  n = std::max<int64_t>(n, 1);
  if (rows > 0) n = std::min(n, rows);
  return n;
}

void chunked_cross_entropy_forward(BlasLt& lt, const ChunkedLoss& p, float* row_loss, float* loss_sum,
                                   cudaStream_t stream, float* row_entropy) {
  run_chunks(lt, p, false, 0.0f, row_loss, row_entropy, loss_sum, nullptr, nullptr, stream);
}

void chunked_cross_entropy(BlasLt& lt, const ChunkedLoss& p, float grad_scale, float* row_loss, float* loss_sum,
                           __nv_bfloat16* dh, float* dw, cudaStream_t stream) {
  run_chunks(lt, p, true, grad_scale, row_loss, nullptr, loss_sum, dh, dw, stream);
}

}  // namespace nemokit::rt::cuda
