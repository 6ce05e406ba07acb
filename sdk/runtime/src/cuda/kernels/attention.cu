// Flash attention forward and backward on tensor cores (WMMA bf16 16x16x16, fp32 accumulate).
//
// Every product goes through shared memory: WMMA loads its operands from bf16 tiles and stores
// its fp32 results to shared tiles, and the softmax, the masks and the rescaling work on those
// tiles with a plain thread-per-element layout. So no code depends on how a fragment's elements
// map to threads (unspecified for WMMA); the price is a shared-memory round trip per product,
// which register-resident mma.sync fragments (FlashAttention-2's layout) would save later.
//
// Tiles are 64 queries x 64 keys; a block is 4 warps and warp w owns the rows 16w..16w+15 of the
// query tile (forward) or the key tile (backward's dK, dV). head_dim is a template parameter
// (8..128); below 16 the tiles are padded with zero columns to WMMA's 16.
//
// Backward, FlashAttention-2's order: a block per (key tile, kv head, batch) holds its dK, dV
// sums over all query tiles and all query heads of the group, so dk and dv are written once,
// without atomics; dQ of one query tile gets a share from every key tile, added with fp32
// atomics into a workspace and rounded into the bf16 dq by a last small kernel (a separate dQ
// pass would recompute S and dP: 2 more of the 5 products). As in FlashAttention-2, P and dS
// are rounded to bf16 for the tensor-core products and D = rowsum(dout * out) reads the bf16 out.
#include <mma.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "attention.cuh"
#include "cuda_check.cuh"

namespace nemokit::rt::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;

constexpr int kBlock = 64;  // queries per query tile = keys per key tile
constexpr int kWarps = 4;   // warp w: rows 16w..16w+15 of the block's tile
constexpr int kThreads = 32 * kWarps;
constexpr int kLds = kBlock + 4;  // fp32 [64][kLds] score tiles: a multiple of 4 (WMMA's fp32 ldm)
constexpr int kLdp = kBlock + 8;  // bf16 [64][kLdp] probability tiles: a multiple of 8 (WMMA's bf16 ldm)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int HD>
struct Dims {
  static constexpr int kHdp = HD < 16 ? 16 : HD;  // head dim padded to WMMA's 16
  static constexpr int kNt = kHdp / 16;           // 16-wide column tiles of a head
  static constexpr int kLdh = kHdp + 8;           // bf16 [64][kLdh] q/k/v/dout tiles; +16 B per row
                                                  // staggers the banks of WMMA's row loads
  static constexpr int kLdo = kHdp + 4;           // fp32 [64][kLdo] output / gradient tiles
  static_assert(HD % 8 == 0 && HD <= 128, "head_dim: a multiple of 8 up to 128");
};

// WMMA needs 32-byte aligned tile pointers; every array starts on 128 bytes, and every row
// stride above times 16 rows is a multiple of 32 bytes.
constexpr size_t align128(size_t x) { return (x + 127) / 128 * 128; }

template <int HD>
struct FwdSmem {
  using D = Dims<HD>;
  static constexpr size_t q = 0;                                       // bf16 [64][kLdh]
  static constexpr size_t k = align128(q + kBlock * D::kLdh * 2);       // bf16 [64][kLdh]
  static constexpr size_t v = align128(k + kBlock * D::kLdh * 2);       // bf16 [64][kLdh]
  static constexpr size_t s = align128(v + kBlock * D::kLdh * 2);       // fp32 [64][kLds] scores
  static constexpr size_t p = align128(s + kBlock * kLds * 4);          // bf16 [64][kLdp] probabilities
  static constexpr size_t o = align128(p + kBlock * kLdp * 2);          // fp32 [64][kLdo] output sums
  static constexpr size_t qdoc = align128(o + kBlock * D::kLdo * 4);    // int [64]
  static constexpr size_t kdoc = qdoc + kBlock * 4;                      // int [64]
  static constexpr size_t linv = kdoc + kBlock * 4;                      // float [64] 1 / row sum
  static constexpr size_t bytes = linv + kBlock * 4;
};

template <int HD>
struct BwdSmem {
  using D = Dims<HD>;
  static constexpr size_t k = 0;                                  // bf16 [64][kLdh], the block's keys
  static constexpr size_t v = align128(k + kBlock * D::kLdh * 2);  // bf16 [64][kLdh]
  static constexpr size_t q = align128(v + kBlock * D::kLdh * 2);  // bf16 [64][kLdh], per query tile
  static constexpr size_t dout = align128(q + kBlock * D::kLdh * 2);
  // One region holds the scores S and dP (fp32 [64][kLds] each) while the softmax gradient is
  // formed, and then the dQ tile (fp32 [64][kLdo]) and, at the end, the dK and dV tiles.
  static constexpr size_t region = align128(dout + kBlock * D::kLdh * 2);
  static constexpr size_t region_bytes =
      2 * kBlock * kLds * 4 > kBlock * D::kLdo * 4 ? 2 * kBlock * kLds * 4 : kBlock * D::kLdo * 4;
  static constexpr size_t p = align128(region + region_bytes);  // bf16 [64][kLdp] P
  static constexpr size_t ds = align128(p + kBlock * kLdp * 2);  // bf16 [64][kLdp] dS
  static constexpr size_t kdoc = align128(ds + kBlock * kLdp * 2);
  static constexpr size_t qdoc = kdoc + kBlock * 4;
  static constexpr size_t lse = qdoc + kBlock * 4;  // float [64], times log2(e)
  static constexpr size_t dd = lse + kBlock * 4;    // float [64], D of the query rows
  static constexpr size_t bytes = dd + kBlock * 4;
};

// A tile of up to 64 rows of one head (bf16, row stride `stride` elements) into shared [64][kLdh],
// 16 bytes a thread per load (rows are 16-byte aligned: hd and the strides are multiples of 8).
// Rows past `rows_valid` and the padding columns are zero, so they add nothing to a product.
template <int HD>
__device__ void load_tile(bf16* dst, const bf16* src, int64_t stride, int rows_valid) {
  using D = Dims<HD>;
  constexpr int kChunks = D::kHdp / 8;  // 16-byte chunks per row
  for (int e = threadIdx.x; e < kBlock * kChunks; e += kThreads) {
    const int r = e / kChunks, c = e % kChunks;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < rows_valid && c * 8 < HD) val = *reinterpret_cast<const uint4*>(src + int64_t(r) * stride + c * 8);
    *reinterpret_cast<uint4*>(dst + r * D::kLdh + c * 8) = val;
  }
}

// The CPU's mask: query qi sees key kj of the same sequence when both exist, kj is in qi's
// document, and (causal) kj <= qi.
__device__ __forceinline__ bool visible(int qi, int kj, int T, bool causal, bool has_doc, int qdoc, int kdoc) {
  return qi < T && kj < T && (!causal || kj <= qi) && (!has_doc || qdoc == kdoc);
}

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragAt = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major>;  // A read transposed
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;  // B read transposed
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// dst rows 16w..16w+15 (fp32 [64][kLds]) = A rows 16w.. (bf16 [64][kLdh]) times B^T (B bf16
// [64][kLdh]): the 16 x 64 scores of one warp, over the padded head dim.
template <int HD>
__device__ void warp_scores(float* dst, const bf16* a, const bf16* b, int warp) {
  using D = Dims<HD>;
  FragC acc[kBlock / 16];
#pragma unroll
  for (int j = 0; j < kBlock / 16; ++j) wmma::fill_fragment(acc[j], 0.0f);
#pragma unroll
  for (int kd = 0; kd < D::kNt; ++kd) {
    FragA fa;
    wmma::load_matrix_sync(fa, a + warp * 16 * D::kLdh + kd * 16, D::kLdh);
#pragma unroll
    for (int j = 0; j < kBlock / 16; ++j) {
      // B^T(kd, j) as a column-major matrix_b: element (d, n) at b[(16j + n) * kLdh + 16kd + d].
      FragBt fb;
      wmma::load_matrix_sync(fb, b + j * 16 * D::kLdh + kd * 16, D::kLdh);
      wmma::mma_sync(acc[j], fa, fb, acc[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < kBlock / 16; ++j)
    wmma::store_matrix_sync(dst + warp * 16 * kLds + j * 16, acc[j], kLds, wmma::mem_row_major);
}

// Grid (query tiles, heads, batch). Each warp runs the online softmax of its 16 query rows over
// the key tiles: S = Q K^T (scaled into log2 units), running max m and sum l, O = O * alpha + P V
// with O in shared fp32. Lanes 2i and 2i+1 share row 16w + i, each taking every other column.
template <int HD>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                             const int32_t* __restrict__ doc, bf16* __restrict__ out, float* __restrict__ lse, int T,
                             int nh, int rep, bool causal) {
  using D = Dims<HD>;
  using L = FwdSmem<HD>;
  NEMOKIT_DYNAMIC_SHARED(__align__(128) unsigned char, smem);
  bf16* Qs = reinterpret_cast<bf16*>(smem + L::q);
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::k);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::v);
  float* Ss = reinterpret_cast<float*>(smem + L::s);
  bf16* Ps = reinterpret_cast<bf16*>(smem + L::p);
  float* Os = reinterpret_cast<float*>(smem + L::o);
  int* qdoc = reinterpret_cast<int*>(smem + L::qdoc);
  int* kdoc = reinterpret_cast<int*>(smem + L::kdoc);
  float* linv = reinterpret_cast<float*>(smem + L::linv);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q0 = blockIdx.x * kBlock, h = blockIdx.y, b = blockIdx.z, kh = h / rep;
  const int64_t qs = int64_t(nh) * HD, ks = int64_t(nh / rep) * HD, row0 = int64_t(b) * T;
  const float scale_log2 = kLog2e / sqrtf(float(HD));  // exp(x * scale) = exp2(x * scale_log2)
  const bool has_doc = doc != nullptr;

  load_tile<HD>(Qs, q + (row0 + q0) * qs + int64_t(h) * HD, qs, min(kBlock, T - q0));
  for (int i = threadIdx.x; i < kBlock; i += kThreads) qdoc[i] = has_doc && q0 + i < T ? doc[row0 + q0 + i] : 0;
  for (int i = threadIdx.x; i < kBlock * D::kLdo; i += kThreads) Os[i] = 0.0f;

  const int r = warp * 16 + lane / 2, half = lane % 2, qi = q0 + r;
  float m = -INFINITY, l = 0.0f;  // running max (log2 units) and sum of row r, the same in both lanes

  // Causal: the keys past the tile's last query are never seen.
  const int kend = causal ? min(T, q0 + kBlock) : T;
  for (int k0 = 0; k0 < kend; k0 += kBlock) {
    __syncthreads();  // every warp is done with the previous K, V tiles (and Q, Os are loaded)
    const int kvalid = min(kBlock, T - k0);
    load_tile<HD>(Ks, k + (row0 + k0) * ks + int64_t(kh) * HD, ks, kvalid);
    load_tile<HD>(Vs, v + (row0 + k0) * ks + int64_t(kh) * HD, ks, kvalid);
    for (int i = threadIdx.x; i < kBlock; i += kThreads) kdoc[i] = has_doc && i < kvalid ? doc[row0 + k0 + i] : 0;
    __syncthreads();

    // From here to the loop's end a warp touches only its own rows of Ss, Ps and Os.
    warp_scores<HD>(Ss, Qs, Ks, warp);
    __syncwarp();

    float* srow = Ss + r * kLds;
    float mx = -INFINITY;
#pragma unroll 8
    for (int i = 0; i < kBlock / 2; ++i) {
      const int c = 2 * i + half;
      const float x = visible(qi, k0 + c, T, causal, has_doc, qdoc[r], kdoc[c]) ? srow[c] * scale_log2 : -INFINITY;
      srow[c] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m, mx);
    // A row that has seen no visible key yet (whole tile masked by documents) keeps m = -inf;
    // subtracting 0 then gives exp2(-inf) = 0 for alpha and p instead of NaN from -inf - -inf.
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float alpha = exp2f(m - m_use);
    float sum = 0.0f;
    bf16* prow = Ps + r * kLdp;
#pragma unroll 8
    for (int i = 0; i < kBlock / 2; ++i) {
      const int c = 2 * i + half;
      const float p = exp2f(srow[c] - m_use);
      prow[c] = __float2bfloat16(p);
      sum += p;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l = l * alpha + sum;
    m = m_new;
    float* orow = Os + r * D::kLdo;
    for (int d = half; d < D::kHdp; d += 2) orow[d] *= alpha;
    __syncwarp();

    // O rows of this warp += P V.
    FragA fp[kBlock / 16];
#pragma unroll
    for (int kk = 0; kk < kBlock / 16; ++kk) wmma::load_matrix_sync(fp[kk], Ps + warp * 16 * kLdp + kk * 16, kLdp);
#pragma unroll
    for (int nd = 0; nd < D::kNt; ++nd) {
      FragC acc;
      float* otile = Os + warp * 16 * D::kLdo + nd * 16;
      wmma::load_matrix_sync(acc, otile, D::kLdo, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < kBlock / 16; ++kk) {
        FragB fv;
        wmma::load_matrix_sync(fv, Vs + kk * 16 * D::kLdh + nd * 16, D::kLdh);
        wmma::mma_sync(acc, fp[kk], fv, acc);
      }
      wmma::store_matrix_sync(otile, acc, D::kLdo, wmma::mem_row_major);
    }
  }
  __syncwarp();

  // Every existing query sees at least itself, so l > 0 on the rows that are written.
  if (half == 0) {
    linv[r] = l > 0.0f ? 1.0f / l : 0.0f;
    if (qi < T) lse[(int64_t(b) * nh + h) * T + qi] = (m + log2f(l)) * kLn2;
  }
  __syncwarp();
  // The warp's 16 rows, consecutive lanes on consecutive columns (coalesced stores).
  for (int e = lane; e < 16 * HD; e += 32) {
    const int rr = warp * 16 + e / HD, d = e % HD;
    if (q0 + rr < T) out[(row0 + q0 + rr) * qs + int64_t(h) * HD + d] = __float2bfloat16(Os[rr * D::kLdo + d] * linv[rr]);
  }
}

// D[b, h, t] = sum_d dout * out over one head of one row: a warp per (row, head).
__global__ void attention_rowdot_kernel(float* __restrict__ dd, const bf16* __restrict__ out,
                                        const bf16* __restrict__ dout, int64_t rows, int T, int nh, int hd) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (w >= rows * nh) return;  // the whole warp leaves together
  const int64_t row = w / nh;
  const int h = int(w % nh);
  const int64_t base = row * nh * hd + int64_t(h) * hd;
  float sum = 0.0f;
  for (int d = lane; d < hd; d += 32) sum += __bfloat162float(dout[base + d]) * __bfloat162float(out[base + d]);
#pragma unroll
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) dd[(row / T * nh + h) * T + row % T] = sum;
}

// g rows row0 + 16w.. (the warp's 16 rows of a tile, head kh, row stride `stride`) += the warp's
// accumulators, staged through the warp's own rows of the fp32 tile `stage`.
template <int HD>
__device__ void add_rows(bf16* g, const FragC (&acc)[Dims<HD>::kNt], float* stage, int64_t row0, int64_t stride,
                         int kh, int rows_valid, int warp, int lane) {
  using D = Dims<HD>;
#pragma unroll
  for (int nd = 0; nd < D::kNt; ++nd)
    wmma::store_matrix_sync(stage + warp * 16 * D::kLdo + nd * 16, acc[nd], D::kLdo, wmma::mem_row_major);
  __syncwarp();
  for (int e = lane; e < 16 * HD; e += 32) {
    const int rr = warp * 16 + e / HD, d = e % HD;
    if (rr < rows_valid) {
      const int64_t i = (row0 + rr) * stride + int64_t(kh) * HD + d;
      g[i] = __float2bfloat16(__bfloat162float(g[i]) + stage[rr * D::kLdo + d]);
    }
  }
  __syncwarp();  // the lanes' reads are done before the stage is written again
}

// Grid (key tiles, kv heads, batch). The block keeps its K, V tile and its dK, dV sums (in WMMA
// accumulators, warp w: key rows 16w..) while it walks the query heads of its group and their
// query tiles; per tile: S = Q K^T and dP = dO V^T (warp w: query rows 16w..), P = exp2(S - lse),
// dS = P (dP - D) scale; then dV += P^T dO, dK += dS^T Q, and dQ = dS K added to the fp32 dq
// accumulator with atomics (other key tiles add into the same rows).
template <int HD>
__global__ void __launch_bounds__(kThreads)
    attention_backward_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                              const int32_t* __restrict__ doc, const bf16* __restrict__ dout,
                              const float* __restrict__ lse, const float* __restrict__ dd, float* __restrict__ dq_acc,
                              bf16* __restrict__ dk, bf16* __restrict__ dv, int T, int nh, int rep, bool causal) {
  using D = Dims<HD>;
  using L = BwdSmem<HD>;
  NEMOKIT_DYNAMIC_SHARED(__align__(128) unsigned char, smem);
  bf16* Ks = reinterpret_cast<bf16*>(smem + L::k);
  bf16* Vs = reinterpret_cast<bf16*>(smem + L::v);
  bf16* Qs = reinterpret_cast<bf16*>(smem + L::q);
  bf16* dOs = reinterpret_cast<bf16*>(smem + L::dout);
  float* Ss = reinterpret_cast<float*>(smem + L::region);
  float* dPs = Ss + kBlock * kLds;
  float* Gs = reinterpret_cast<float*>(smem + L::region);  // dQ, later dK and dV: fp32 [64][kLdo]
  bf16* Ps = reinterpret_cast<bf16*>(smem + L::p);
  bf16* dSs = reinterpret_cast<bf16*>(smem + L::ds);
  int* kdoc = reinterpret_cast<int*>(smem + L::kdoc);
  int* qdoc = reinterpret_cast<int*>(smem + L::qdoc);
  float* lse_s = reinterpret_cast<float*>(smem + L::lse);
  float* dd_s = reinterpret_cast<float*>(smem + L::dd);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int k0 = blockIdx.x * kBlock, kh = blockIdx.y, b = blockIdx.z, nkv = nh / rep;
  const int64_t qs = int64_t(nh) * HD, ks = int64_t(nkv) * HD, row0 = int64_t(b) * T;
  const float scale = 1.0f / sqrtf(float(HD)), scale_log2 = scale * kLog2e;
  const bool has_doc = doc != nullptr;
  const int kvalid = min(kBlock, T - k0);

  load_tile<HD>(Ks, k + (row0 + k0) * ks + int64_t(kh) * HD, ks, kvalid);
  load_tile<HD>(Vs, v + (row0 + k0) * ks + int64_t(kh) * HD, ks, kvalid);
  for (int i = threadIdx.x; i < kBlock; i += kThreads) kdoc[i] = has_doc && i < kvalid ? doc[row0 + k0 + i] : 0;

  FragC dk_acc[D::kNt], dv_acc[D::kNt];
#pragma unroll
  for (int nd = 0; nd < D::kNt; ++nd) {
    wmma::fill_fragment(dk_acc[nd], 0.0f);
    wmma::fill_fragment(dv_acc[nd], 0.0f);
  }

  const int r = warp * 16 + lane / 2, half = lane % 2;
  const int ntiles = (T + kBlock - 1) / kBlock;
  // Causal: query tiles before the key tile see none of its keys (both tiles are 64 wide).
  const int qt_begin = causal ? int(blockIdx.x) : 0;
  for (int h = kh * rep; h < (kh + 1) * rep; ++h) {
    const float* lse_h = lse + (int64_t(b) * nh + h) * T;
    const float* dd_h = dd + (int64_t(b) * nh + h) * T;
    for (int qt = qt_begin; qt < ntiles; ++qt) {
      const int q0 = qt * kBlock, qvalid = min(kBlock, T - q0);
      __syncthreads();  // the previous tile's products and dq atomics are done (K, V, kdoc loaded)
      load_tile<HD>(Qs, q + (row0 + q0) * qs + int64_t(h) * HD, qs, qvalid);
      load_tile<HD>(dOs, dout + (row0 + q0) * qs + int64_t(h) * HD, qs, qvalid);
      for (int i = threadIdx.x; i < kBlock; i += kThreads) {
        const bool ok = i < qvalid;
        qdoc[i] = has_doc && ok ? doc[row0 + q0 + i] : 0;
        lse_s[i] = ok ? lse_h[q0 + i] * kLog2e : 0.0f;
        dd_s[i] = ok ? dd_h[q0 + i] : 0.0f;
      }
      __syncthreads();

      // S and dP rows of this warp's 16 queries, then P and dS of those rows.
      warp_scores<HD>(Ss, Qs, Ks, warp);
      warp_scores<HD>(dPs, dOs, Vs, warp);
      __syncwarp();
      {
        const int qi = q0 + r;
        const float lrow = lse_s[r], drow = dd_s[r];
        const float* srow = Ss + r * kLds;
        const float* dprow = dPs + r * kLds;
        bf16* prow = Ps + r * kLdp;
        bf16* dsrow = dSs + r * kLdp;
#pragma unroll 8
        for (int i = 0; i < kBlock / 2; ++i) {
          const int c = 2 * i + half;
          const float p =
              visible(qi, k0 + c, T, causal, has_doc, qdoc[r], kdoc[c]) ? exp2f(srow[c] * scale_log2 - lrow) : 0.0f;
          prow[c] = __float2bfloat16(p);
          dsrow[c] = __float2bfloat16(p * (dprow[c] - drow) * scale);
        }
      }
      __syncthreads();  // P^T and dS^T below read every warp's rows

      // dV += P^T dO and dK += dS^T Q for this warp's 16 keys: P^T(key m, query j) is
      // Ps[j][m], a column-major matrix_a starting at column 16w.
#pragma unroll
      for (int kk = 0; kk < kBlock / 16; ++kk) {
        FragAt fp, fds;
        wmma::load_matrix_sync(fp, Ps + kk * 16 * kLdp + warp * 16, kLdp);
        wmma::load_matrix_sync(fds, dSs + kk * 16 * kLdp + warp * 16, kLdp);
#pragma unroll
        for (int nd = 0; nd < D::kNt; ++nd) {
          FragB fb;
          wmma::load_matrix_sync(fb, dOs + kk * 16 * D::kLdh + nd * 16, D::kLdh);
          wmma::mma_sync(dv_acc[nd], fp, fb, dv_acc[nd]);
          wmma::load_matrix_sync(fb, Qs + kk * 16 * D::kLdh + nd * 16, D::kLdh);
          wmma::mma_sync(dk_acc[nd], fds, fb, dk_acc[nd]);
        }
      }

      // dQ rows of this warp's 16 queries = dS K, into Gs (S and dP are no longer read: every
      // warp passed the barrier above), then added to the fp32 accumulator.
      {
#pragma unroll
        for (int nd = 0; nd < D::kNt; ++nd) {
          FragC acc;
          wmma::fill_fragment(acc, 0.0f);
#pragma unroll
          for (int kk = 0; kk < kBlock / 16; ++kk) {
            FragA fds;  // reloaded per nd: holding all four next to dK, dV's accumulators spills
            FragB fk;
            wmma::load_matrix_sync(fds, dSs + warp * 16 * kLdp + kk * 16, kLdp);
            wmma::load_matrix_sync(fk, Ks + kk * 16 * D::kLdh + nd * 16, D::kLdh);
            wmma::mma_sync(acc, fds, fk, acc);
          }
          wmma::store_matrix_sync(Gs + warp * 16 * D::kLdo + nd * 16, acc, D::kLdo, wmma::mem_row_major);
        }
      }
      __syncwarp();
      for (int e = lane; e < 16 * HD; e += 32) {
        const int rr = warp * 16 + e / HD, d = e % HD;
        if (q0 + rr < T) atomicAdd(dq_acc + (row0 + q0 + rr) * qs + int64_t(h) * HD + d, Gs[rr * D::kLdo + d]);
      }
    }
  }
  __syncthreads();  // Gs is free again

  // This block alone owns these dk, dv rows (its key tile, its kv head): plain read-add-write.
  add_rows<HD>(dk, dk_acc, Gs, row0 + k0, ks, kh, kvalid, warp, lane);
  add_rows<HD>(dv, dv_acc, Gs, row0 + k0, ks, kh, kvalid, warp, lane);
}

// dq += the fp32 accumulator, rounded once.
__global__ void attention_add_dq_kernel(bf16* __restrict__ dq, const float* __restrict__ acc, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  dq[i] = __float2bfloat16(__bfloat162float(dq[i]) + acc[i]);
}

void check_shape(const AttentionShape& s, const char* who) {
  const auto bad = [&](const std::string& why) { throw std::invalid_argument(std::string(who) + ": " + why); };
  if (s.batch < 0 || s.seq < 0 || s.heads <= 0 || s.kv_heads <= 0) bad("negative or empty shape");
  if (s.heads % s.kv_heads != 0) bad("heads must be a multiple of kv_heads");
  if (s.head_dim != 8 && s.head_dim != 16 && s.head_dim != 32 && s.head_dim != 64 && s.head_dim != 128)
    bad("head_dim " + std::to_string(s.head_dim) + " (supported: 8, 16, 32, 64, 128)");
  if (s.heads > 65535 || s.batch > 65535) bad("heads and batch must fit gridDim.y/z (65535)");
  if (s.seq > std::numeric_limits<int>::max() - kBlock) bad("seq too long");
}

void check_aligned(const void* p, const char* who, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
    throw std::invalid_argument(std::string(who) + ": " + what + " must be 16-byte aligned");
}

template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  // Above 48 KiB a kernel must opt in; cheap, and done at each launch so a new device or
  // context is covered.
  NEMOKIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <int HD>
void launch_forward(const AttentionShape& s, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                    bf16* out, float* lse, cudaStream_t stream) {
  constexpr size_t bytes = FwdSmem<HD>::bytes;
  allow_smem(attention_forward_kernel<HD>, bytes);
  const dim3 grid(unsigned((s.seq + kBlock - 1) / kBlock), unsigned(s.heads), unsigned(s.batch));
  NEMOKIT_LAUNCH(grid, kThreads, bytes, stream, attention_forward_kernel<HD>)
  (q, k, v, doc, out, lse, int(s.seq), int(s.heads), int(s.heads / s.kv_heads), s.causal);
  NEMOKIT_CUDA_LAUNCHED("attention_forward_kernel");
}

template <int HD>
void launch_backward(const AttentionShape& s, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                     const bf16* dout, const float* lse, const float* dd, float* dq_acc, bf16* dk, bf16* dv,
                     cudaStream_t stream) {
  constexpr size_t bytes = BwdSmem<HD>::bytes;
  allow_smem(attention_backward_kernel<HD>, bytes);
  const dim3 grid(unsigned((s.seq + kBlock - 1) / kBlock), unsigned(s.kv_heads), unsigned(s.batch));
  NEMOKIT_LAUNCH(grid, kThreads, bytes, stream, attention_backward_kernel<HD>)
  (q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, int(s.seq), int(s.heads), int(s.heads / s.kv_heads), s.causal);
  NEMOKIT_CUDA_LAUNCHED("attention_backward_kernel");
}

}  // namespace

void attention_forward(const AttentionShape& s, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                       bf16* out, float* lse, cudaStream_t stream) {
  check_shape(s, "attention_forward");
  check_aligned(q, "attention_forward", "q");
  check_aligned(k, "attention_forward", "k");
  check_aligned(v, "attention_forward", "v");
  check_aligned(out, "attention_forward", "out");
  if (s.batch == 0 || s.seq == 0) return;
  switch (s.head_dim) {
    case 8: return launch_forward<8>(s, q, k, v, doc, out, lse, stream);
    case 16: return launch_forward<16>(s, q, k, v, doc, out, lse, stream);
    case 32: return launch_forward<32>(s, q, k, v, doc, out, lse, stream);
    case 64: return launch_forward<64>(s, q, k, v, doc, out, lse, stream);
    default: return launch_forward<128>(s, q, k, v, doc, out, lse, stream);
  }
}

size_t attention_backward_workspace_bytes(const AttentionShape& s) {
  const size_t rows = size_t(s.batch) * size_t(s.seq);
  return (rows * size_t(s.heads) * size_t(s.head_dim) + rows * size_t(s.heads)) * sizeof(float);
}

void attention_backward(const AttentionShape& s, const bf16* q, const bf16* k, const bf16* v, const int32_t* doc,
                        const bf16* out, const float* lse, const bf16* dout, bf16* dq, bf16* dk, bf16* dv,
                        void* workspace, cudaStream_t stream) {
  check_shape(s, "attention_backward");
  check_aligned(q, "attention_backward", "q");
  check_aligned(k, "attention_backward", "k");
  check_aligned(v, "attention_backward", "v");
  check_aligned(dout, "attention_backward", "dout");
  if (s.batch == 0 || s.seq == 0) return;
  const int64_t rows = s.batch * s.seq, nq = rows * s.heads * s.head_dim;
  float* dq_acc = static_cast<float*>(workspace);
  float* dd = dq_acc + nq;  // [batch, heads, seq]

  NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dq_acc, 0, size_t(nq) * sizeof(float), stream));
  constexpr int kDotThreads = 256;
  const int64_t dot_blocks = (rows * s.heads + kDotThreads / 32 - 1) / (kDotThreads / 32);
  const int64_t add_blocks = (nq + kDotThreads - 1) / kDotThreads;
  if (add_blocks > std::numeric_limits<int>::max() || dot_blocks > std::numeric_limits<int>::max())
    throw std::invalid_argument("attention_backward: too many rows for one grid");
  NEMOKIT_LAUNCH(unsigned(dot_blocks), kDotThreads, 0, stream, attention_rowdot_kernel)
  (dd, out, dout, rows, int(s.seq), int(s.heads), int(s.head_dim));
  NEMOKIT_CUDA_LAUNCHED("attention_rowdot_kernel");
  switch (s.head_dim) {
    case 8: launch_backward<8>(s, q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, stream); break;
    case 16: launch_backward<16>(s, q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, stream); break;
    case 32: launch_backward<32>(s, q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, stream); break;
    case 64: launch_backward<64>(s, q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, stream); break;
    default: launch_backward<128>(s, q, k, v, doc, dout, lse, dd, dq_acc, dk, dv, stream); break;
  }
  NEMOKIT_LAUNCH(unsigned(add_blocks), kDotThreads, 0, stream, attention_add_dq_kernel)(dq, dq_acc, nq);
  NEMOKIT_CUDA_LAUNCHED("attention_add_dq_kernel");
}

}  // namespace nemokit::rt::cuda
