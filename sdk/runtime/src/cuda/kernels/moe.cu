// MoE routing, dispatch, gather and combine (moe.cuh); the expert GEMMs are in moe_experts.cu.
#include <cmath>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "moe.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr size_t kSmemLimit = 48 * 1024;  // default dynamic shared memory limit without opt-in

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("moe: " + what);
}

void check_rows_k(int64_t rows, int k) {
  require(rows >= 0 && k >= 1, "rows must be >= 0 and k >= 1");
  require(rows * k < (int64_t(1) << 31), "rows * k must stay below 2^31 (int32 index maps)");
}

// ---- vector access: V = 8 moves 16 bytes per thread (rows of a width that is a multiple of 8
// with 16-byte aligned bases), V = 1 serves every other width ----
template <int V>
__device__ inline void load_f32(float (&f)[V], const __nv_bfloat16* p) {
  if constexpr (V == 8) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) f[2 * i] = __low2float(h[i]), f[2 * i + 1] = __high2float(h[i]);
  } else {
    f[0] = __bfloat162float(*p);
  }
}

template <int V>
__device__ inline void store_bf16(__nv_bfloat16* p, const float (&f)[V]) {
  if constexpr (V == 8) {
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = u;
  } else {
    *p = __float2bfloat16(f[0]);
  }
}

bool vec8_ok(int64_t d, std::initializer_list<const void*> ptrs) {
  if (d % 8) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16) return false;
  return true;
}

// ---- router ----
// One warp per row. The row's sigmoids and selection keys sit in shared memory; k rounds each
// take the warp's best key (largest value, then lowest expert id: the CPU's partial_sort order)
// by a butterfly reduction that leaves every lane with the winner, which is then struck out
// (NaN never compares greater or equal, so it is never chosen again). A NaN key (NaN logit) is
// taken as -inf, so that k <= E always finds k distinct experts.
__global__ void router_forward_kernel(int32_t* ids, float* weights, float* scores, int32_t* stat, const float* logits,
                                      const float* bias, const uint8_t* pad, int64_t rows, int E, int k, float scale, bool norm) {
  NEMOKIT_DYNAMIC_SHARED(float, smem);  // per warp: s[E], key[E], top_s[k], top_i[k] (int)
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (r >= rows) return;  // whole warps leave; the kernel has no block-wide barrier
  float* s = smem + size_t(warp) * (2 * E + 2 * k);
  float* key = s + E;
  float* top_s = key + E;
  int* top_i = reinterpret_cast<int*>(top_s + k);
  const float* lr = logits + r * E;
  for (int e = lane; e < E; e += kWarp) {
    // The CPU's expression, in fp32 (expf is not the host's exp to the last bit: 2 ulp at most).
    const float v = 1.0f / (1.0f + expf(-lr[e]));
    s[e] = v;
    scores[r * E + e] = v;
    const float b = v + bias[e];
    key[e] = isnan(b) ? -INFINITY : b;
  }
  __syncwarp();
  float denom = 1e-20f;
  for (int j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int bi = E;  // "none": loses to any real key, -inf included, through the id comparison
    for (int e = lane; e < E; e += kWarp) {
      const float v = key[e];
      if (v > bv || (v == bv && e < bi)) bv = v, bi = e;
    }
#pragma unroll
    for (int o = kWarp / 2; o; o >>= 1) {
      const float ov = __shfl_xor_sync(kFull, bv, o);
      const int oi = __shfl_xor_sync(kFull, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
    }
    // Every lane holds the same winner bi < E (a total order on (key, id) pairs).
    const float sv = s[bi];
    denom += sv;   // the CPU's sum, in the same order
    __syncwarp();  // all lanes have read key[] this round before it changes
    if (lane == 0) key[bi] = NAN, top_s[j] = sv, top_i[j] = bi;
    __syncwarp();
  }
  for (int j = lane; j < k; j += kWarp) {
    const float sv = top_s[j];
    const int e = top_i[j];
    ids[r * k + j] = e;
    weights[r * k + j] = (norm ? sv / denom : sv) * scale;
    // Integer atomics: the totals do not depend on the order.
    if (stat && !(pad && pad[r])) atomicAdd(stat + e, 1);
  }
}

// One thread per row: k chosen experts, the CPU's double sums for the normalization.
__global__ void router_backward_kernel(float* dlogits, const float* dweights, const int32_t* ids, const float* scores,
                                       int64_t rows, int E, int k, float scale, bool norm) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* s = scores + r * E;
  const float* dw = dweights + r * k;
  const int32_t* id = ids + r * k;
  float* dl = dlogits + r * E;
  double S = 1e-20, dot = 0;
  if (norm) {
    for (int j = 0; j < k; ++j) S += s[id[j]];
    for (int j = 0; j < k; ++j) dot += double(dw[j]) * s[id[j]];
  }
  for (int j = 0; j < k; ++j) {
    const float ds = norm ? float(scale * (dw[j] / S - dot / (S * S))) : scale * dw[j];
    const float sv = s[id[j]];
    dl[id[j]] += ds * (sv * (1.0f - sv));  // through the sigmoid: ds/dlogit = s (1 - s)
  }
}

// ---- dispatch: a stable counting sort in three passes ----
// The flat pairs i = row * k + slot are cut into chunks of kChunk, one warp each. Pass 1 counts
// each chunk's pairs per expert; pass 2 (one block) turns the counts into each expert's offset
// and each (chunk, expert)'s first position; pass 3 walks every chunk again in order and places
// each pair at its chunk's base for the expert plus its rank among the chunk's earlier pairs
// for that expert. Within a 32-pair step __match_any_sync finds the lanes with the same expert
// (rank = those in lower lanes); the highest of them advances the expert's running count. The
// order is the pairs' order whatever the scheduling, so the result is deterministic, and the
// work is spread over rows * k / kChunk warps rather than one thread per expert scanning all
// rows (E threads walking rows * k pairs each would take ~100 us at training sizes).
constexpr int kChunkSteps = 8;
constexpr int kChunk = kChunkSteps * kWarp;

int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

// Warps per block for the per-warp counters of E ints in shared memory.
int dispatch_warps(int E) {
  const int w = int(kSmemLimit / (size_t(E) * sizeof(int)));
  return w < 1 ? 0 : (w > 4 ? 4 : w);
}

// place = false: hist[chunk][e] = the chunk's pairs of expert e.
// place = true:  hist[chunk][e] holds the chunk's first position for e; writes src/pos.
template <bool place>
__global__ void dispatch_chunk_kernel(int32_t* hist, int32_t* perm_src, int32_t* perm_pos, const int32_t* ids, int64_t n,
                                      int64_t chunks, int E) {
  NEMOKIT_DYNAMIC_SHARED(int, cnt_all);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t chunk = int64_t(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (chunk >= chunks) return;  // whole warps; no block-wide barrier
  int* cnt = cnt_all + size_t(warp) * E;
  for (int e = lane; e < E; e += kWarp) cnt[e] = place ? hist[chunk * E + e] : 0;
  __syncwarp();
  const unsigned lower = (1u << lane) - 1u;
  for (int step = 0; step < kChunkSteps; ++step) {
    const int64_t i = chunk * kChunk + step * kWarp + lane;
    int e = i < n ? ids[i] : -1;
    if (e >= E) e = -1;  // an invalid id is skipped rather than written out of bounds
    const unsigned peers = __match_any_sync(kFull, e);
    if (place && e >= 0) {
      const int32_t p = cnt[e] + __popc(peers & lower);
      perm_src[p] = int32_t(i);
      perm_pos[i] = p;
    }
    __syncwarp();  // every peer has read cnt[e] before the leader moves it
    if (e >= 0 && lane == 31 - __clz(peers)) cnt[e] += __popc(peers);
    __syncwarp();
  }
  if (!place)
    for (int e = lane; e < E; e += kWarp) hist[chunk * E + e] = cnt[e];
}

// One block. A warp per expert sums its column of hist (lanes over chunks); thread 0 scans the
// E totals (E is at most a few hundred: a serial scan of shared memory is a few microseconds);
// then a warp per expert turns its column into first positions by a warp prefix sum, 32 chunks
// at a time.
__global__ void dispatch_scan_kernel(int32_t* counts, int32_t* offsets, int32_t* hist, int64_t chunks, int E) {
  NEMOKIT_DYNAMIC_SHARED(int, tot);  // [E]
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
  for (int e = warp; e < E; e += warps) {
    int t = 0;
    for (int64_t c = lane; c < chunks; c += kWarp) t += hist[c * E + e];
#pragma unroll
    for (int o = kWarp / 2; o; o >>= 1) t += __shfl_xor_sync(kFull, t, o);
    if (lane == 0) counts[e] = t, tot[e] = t;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int acc = 0;
    for (int e = 0; e < E; ++e) {
      const int t = tot[e];
      tot[e] = acc;
      offsets[e] = acc;
      acc += t;
    }
    offsets[E] = acc;
  }
  __syncthreads();
  for (int e = warp; e < E; e += warps) {
    int base = tot[e];
    for (int64_t c0 = 0; c0 < chunks; c0 += kWarp) {
      const int64_t c = c0 + lane;
      const int h = c < chunks ? hist[c * E + e] : 0;
      int incl = h;
#pragma unroll
      for (int o = 1; o < kWarp; o <<= 1) {
        const int v = __shfl_up_sync(kFull, incl, o);
        if (lane >= o) incl += v;
      }
      if (c < chunks) hist[c * E + e] = base + incl - h;
      base += __shfl_sync(kFull, incl, kWarp - 1);
    }
  }
}

// ---- gather / combine ----
constexpr int kRowThreads = 128;

// Block (p, column block): copies x's row of expert-order row p.
template <int V>
__global__ void gather_kernel(__nv_bfloat16* out, const __nv_bfloat16* x, const int32_t* src, int k, int64_t d) {
  const int64_t p = blockIdx.x;
  const __nv_bfloat16* xr = x + int64_t(src[p] / k) * d;
  __nv_bfloat16* o = out + p * d;
  for (int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V; c < d; c += int64_t(gridDim.y) * blockDim.x * V) {
    if constexpr (V == 8)
      *reinterpret_cast<uint4*>(o + c) = *reinterpret_cast<const uint4*>(xr + c);
    else
      o[c] = xr[c];
  }
}

// Block (row, column block): out[row] += sum_j w_j * in[pos(row, j)] (w = 1 when null), the
// sum in fp32 over the slots in order. A gather by row, not a scatter by pair, so no atomics.
template <int V>
__global__ void sum_slots_kernel(__nv_bfloat16* out, const __nv_bfloat16* in, const float* w, const int32_t* pos, int k,
                                 int64_t d) {
  const int64_t r = blockIdx.x;
  for (int64_t c = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V; c < d; c += int64_t(gridDim.y) * blockDim.x * V) {
    float acc[V] = {};
    for (int j = 0; j < k; ++j) {
      const float wj = w ? w[r * k + j] : 1.0f;
      float v[V];
      load_f32<V>(v, in + int64_t(pos[r * k + j]) * d + c);
#pragma unroll
      for (int i = 0; i < V; ++i) acc[i] += wj * v[i];
    }
    float o[V];
    load_f32<V>(o, out + r * d + c);
#pragma unroll
    for (int i = 0; i < V; ++i) o[i] += acc[i];
    store_bf16<V>(out + r * d + c, o);
  }
}

// One warp per pair i: dy_perm[pos] = w_i dout[row], dweights[i] = dout[row] . y_perm[pos].
template <int V>
__global__ void combine_backward_kernel(__nv_bfloat16* dyp, float* dw, const __nv_bfloat16* dout, const __nv_bfloat16* yp,
                                        const float* w, const int32_t* pos, int64_t n, int k, int64_t d) {
  const int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (i >= n) return;  // whole warps
  const int64_t p = pos[i], r = i / k;
  const float wi = w[i];
  float dot = 0;
  for (int64_t c = int64_t(lane) * V; c < d; c += kWarp * V) {
    float g[V], y[V], o[V];
    load_f32<V>(g, dout + r * d + c);
    load_f32<V>(y, yp + p * d + c);
#pragma unroll
    for (int j = 0; j < V; ++j) o[j] = wi * g[j], dot += g[j] * y[j];
    store_bf16<V>(dyp + p * d + c, o);
  }
#pragma unroll
  for (int o = kWarp / 2; o; o >>= 1) dot += __shfl_xor_sync(kFull, dot, o);
  if (lane == 0) dw[i] = dot;
}

// Grid of (rows, column blocks) for the row kernels: gridDim.x takes the rows (up to 2^31 - 1),
// gridDim.y the column blocks (at most 65535, the kernels stride over the rest).
dim3 row_grid(int64_t rows, int64_t d, int V) {
  const int64_t per_block = int64_t(kRowThreads) * V;
  int64_t cb = (d + per_block - 1) / per_block;
  if (cb > 65535) cb = 65535;
  return dim3(unsigned(rows), unsigned(cb < 1 ? 1 : cb));
}

}  // namespace

void moe_router_forward(int32_t* topk_ids, float* topk_weights, float* scores, int32_t* stat_counts, const float* logits,
                        const float* bias, const uint8_t* pad, int64_t rows, int E, int k, float scale, bool norm_topk,
                        cudaStream_t stream) {
  check_rows_k(rows, k);
  require(k <= E, "k must not exceed the expert count");
  if (rows == 0) return;
  const size_t per_warp = size_t(2 * E + 2 * k) * sizeof(float);
  int warps = int(kSmemLimit / per_warp);
  require(warps >= 1, "too many experts for the router's shared memory");
  if (warps > 8) warps = 8;
  const int64_t blocks = (rows + warps - 1) / warps;
  NEMOKIT_LAUNCH(unsigned(blocks), warps * kWarp, warps * per_warp, stream, router_forward_kernel)
  (topk_ids, topk_weights, scores, stat_counts, logits, bias, pad, rows, E, k, scale, norm_topk);
  NEMOKIT_CUDA_LAUNCHED("router_forward_kernel");
}

void moe_router_backward(float* dlogits, const float* dweights, const int32_t* topk_ids, const float* scores, int64_t rows, int E,
                         int k, float scale, bool norm_topk, cudaStream_t stream) {
  check_rows_k(rows, k);
  if (rows == 0) return;
  const int threads = 256;
  NEMOKIT_LAUNCH(unsigned((rows + threads - 1) / threads), threads, 0, stream, router_backward_kernel)
  (dlogits, dweights, topk_ids, scores, rows, E, k, scale, norm_topk);
  NEMOKIT_CUDA_LAUNCHED("router_backward_kernel");
}

size_t moe_dispatch_scratch_bytes(int64_t rows, int k, int E) {
  return size_t(chunks_of(rows * k)) * size_t(E) * sizeof(int32_t);
}

void moe_dispatch(int32_t* expert_counts, int32_t* expert_offsets, int32_t* perm_src, int32_t* perm_pos, void* scratch,
                  const int32_t* topk_ids, int64_t rows, int k, int E, cudaStream_t stream) {
  check_rows_k(rows, k);
  require(E >= 1, "E must be >= 1");
  const int64_t n = rows * k, chunks = chunks_of(n);
  require(chunks * E < (int64_t(1) << 31), "dispatch histogram too large");
  auto* hist = static_cast<int32_t*>(scratch);
  const int warps = dispatch_warps(E);
  require(warps >= 1, "too many experts for the dispatch's shared memory");
  const size_t smem = size_t(warps) * E * sizeof(int);
  const unsigned blocks = unsigned((chunks + warps - 1) / warps);
  if (chunks > 0) {
    NEMOKIT_LAUNCH(blocks, warps * kWarp, smem, stream, dispatch_chunk_kernel<false>)
    (hist, nullptr, nullptr, topk_ids, n, chunks, E);
    NEMOKIT_CUDA_LAUNCHED("dispatch_chunk_kernel<count>");
  }
  // Runs with no chunks too: the counts and offsets are written (zeros) either way.
  NEMOKIT_LAUNCH(1, 1024, size_t(E) * sizeof(int), stream, dispatch_scan_kernel)(expert_counts, expert_offsets, hist, chunks, E);
  NEMOKIT_CUDA_LAUNCHED("dispatch_scan_kernel");
  if (chunks > 0) {
    NEMOKIT_LAUNCH(blocks, warps * kWarp, smem, stream, dispatch_chunk_kernel<true>)
    (hist, perm_src, perm_pos, topk_ids, n, chunks, E);
    NEMOKIT_CUDA_LAUNCHED("dispatch_chunk_kernel<place>");
  }
}

void moe_expert_counts_to_host(int32_t* host_counts, const int32_t* expert_counts, int E, cudaStream_t stream) {
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(host_counts, expert_counts, size_t(E) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void moe_gather(__nv_bfloat16* x_perm, const __nv_bfloat16* x, const int32_t* perm_src, int64_t rows, int k, int64_t d,
                cudaStream_t stream) {
  check_rows_k(rows, k);
  if (rows == 0 || d == 0) return;
  const int64_t n = rows * k;
  if (vec8_ok(d, {x_perm, x})) {
    NEMOKIT_LAUNCH(row_grid(n, d, 8), kRowThreads, 0, stream, gather_kernel<8>)(x_perm, x, perm_src, k, d);
  } else {
    NEMOKIT_LAUNCH(row_grid(n, d, 1), kRowThreads, 0, stream, gather_kernel<1>)(x_perm, x, perm_src, k, d);
  }
  NEMOKIT_CUDA_LAUNCHED("gather_kernel");
}

void moe_gather_backward(__nv_bfloat16* dx, const __nv_bfloat16* dx_perm, const int32_t* perm_pos, int64_t rows, int k, int64_t d,
                         cudaStream_t stream) {
  check_rows_k(rows, k);
  if (rows == 0 || d == 0) return;
  if (vec8_ok(d, {dx, dx_perm})) {
    NEMOKIT_LAUNCH(row_grid(rows, d, 8), kRowThreads, 0, stream, sum_slots_kernel<8>)(dx, dx_perm, nullptr, perm_pos, k, d);
  } else {
    NEMOKIT_LAUNCH(row_grid(rows, d, 1), kRowThreads, 0, stream, sum_slots_kernel<1>)(dx, dx_perm, nullptr, perm_pos, k, d);
  }
  NEMOKIT_CUDA_LAUNCHED("sum_slots_kernel (gather backward)");
}

void moe_combine(__nv_bfloat16* out, const __nv_bfloat16* y_perm, const float* topk_weights, const int32_t* perm_pos,
                 int64_t rows, int k, int64_t d, cudaStream_t stream) {
  check_rows_k(rows, k);
  if (rows == 0 || d == 0) return;
  if (vec8_ok(d, {out, y_perm})) {
    NEMOKIT_LAUNCH(row_grid(rows, d, 8), kRowThreads, 0, stream, sum_slots_kernel<8>)(out, y_perm, topk_weights, perm_pos, k, d);
  } else {
    NEMOKIT_LAUNCH(row_grid(rows, d, 1), kRowThreads, 0, stream, sum_slots_kernel<1>)(out, y_perm, topk_weights, perm_pos, k, d);
  }
  NEMOKIT_CUDA_LAUNCHED("sum_slots_kernel (combine)");
}

void moe_combine_backward(__nv_bfloat16* dy_perm, float* dweights, const __nv_bfloat16* dout, const __nv_bfloat16* y_perm,
                          const float* topk_weights, const int32_t* perm_pos, int64_t rows, int k, int64_t d,
                          cudaStream_t stream) {
  check_rows_k(rows, k);
  if (rows == 0) return;
  const int64_t n = rows * k;
  const int threads = 256, pairs_per_block = threads / kWarp;
  const unsigned blocks = unsigned((n + pairs_per_block - 1) / pairs_per_block);
  if (vec8_ok(d, {dy_perm, dout, y_perm})) {
    NEMOKIT_LAUNCH(blocks, threads, 0, stream, combine_backward_kernel<8>)
    (dy_perm, dweights, dout, y_perm, topk_weights, perm_pos, n, k, d);
  } else {
    NEMOKIT_LAUNCH(blocks, threads, 0, stream, combine_backward_kernel<1>)
    (dy_perm, dweights, dout, y_perm, topk_weights, perm_pos, n, k, d);
  }
  NEMOKIT_CUDA_LAUNCHED("combine_backward_kernel");
}

}  // namespace nemokit::rt::cuda
