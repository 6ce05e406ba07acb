// Mamba2 SSD chunked scan on the GPU (kernels::ssd_* in src/kernels/ssd_scan.cpp is the
// reference, with the same per-chunk quantities). Structured as mamba_ssm's Triton kernels:
//
//   forward:  chunk_state   (batch, chunk, head) blocks: each chunk's own state contribution
//                           sum_l w_l X_l (x) B_l, written to the next chunk's slot of chunk_states;
//             state_passing (batch, head, state-slice) blocks, sequential over chunks:
//                           S_{c+1} = f_c S_c + local_c, f_c = 0 at a document start;
//             chunk_scan    (batch, chunk, head): Y = (C B^T o L) X + e o (C S_c^T) + D x.
//   backward: chunk_state<bwd> (the state gradient each chunk's outputs send back: (e o dY)^T C),
//             state_passing<bwd> (reverse over chunks), then per (batch, chunk, head) the terms
//             through the carried states and the intra-chunk quadratic form (dx, ddt, the cumsum
//             gradient, dA/dD partials), per (batch, chunk, group, row tile) dB and dC summed over
//             the group's heads in a fixed order, and a last fixed-order reduction of dA, dD.
//
// Every block recomputes its chunk's cumsum of a = A*dt (one sequential pass by one thread, the
// order the CPU uses, so all kernels agree bit for bit), the document mask and the decays
// e_l = exp(Acs_l) (carried state reaches l), w_l = exp(Acs_last - Acs_l) (l reaches the chunk's
// end) and f = e_last, exactly the CPU's Chunk::load.
//
// Products inside a chunk are plain fp32 FMA loops over shared-memory tiles, laid out (padded
// rows) so that a warp reads either one broadcast word or 32 distinct banks. The places marked
// TENSOR CORES are the [Q,N]x[N,Q], [Q,Q]x[Q,P] and [P,Q]x[Q,N] products that mma.sync
// (m16n8k16 bf16, fp32 accumulate) or wgmma would take over later; their operands are already
// bf16 tiles in shared memory where the inputs are bf16.
// Nothing uses float atomics: every output element has one writer, and sums across blocks go
// through scratch partials reduced in a fixed order, so results are deterministic.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "mamba.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxChunk = 256;
constexpr int kTileRows = 32;  // rows of dB / dC per block

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block in a fixed order (warp tree, then the warps in order): deterministic.
// Every thread of the block calls it and gets the sum.
__device__ float block_sum(float v, float* red /* [kWarps] */) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
  __syncthreads();
  float t = 0.0f;
  for (int i = 0; i < kWarps; ++i) t += red[i];
  __syncthreads();  // red may be reused
  return t;
}

// The per-chunk vectors every kernel needs, in static shared memory.
struct ChunkSmem {
  float acs[kMaxChunk];  // inclusive cumsum of a = A*dt
  float dt[kMaxChunk];
  float e[kMaxChunk];    // exp(acs_l) where the carried state reaches l, else 0
  float w[kMaxChunk];    // exp(acs_last - acs_l) where l reaches the chunk's end, else 0
  int32_t doc[kMaxChunk];
};

struct Chunk {
  int64_t base;   // first row: b*seq + c*chunk
  int len;        // rows in this chunk (the last one may be short)
  bool has_prev;  // a chunk before it exists in this sequence
  float f;        // decay of the carried state through the whole chunk (0 if a document starts)
};

// SsdShape::num_chunks is host code (the header is plain C++).
__device__ __forceinline__ int64_t num_chunks(const SsdShape& s) { return (s.seq + s.chunk - 1) / s.chunk; }

__device__ __forceinline__ int chunk_len(const SsdShape& s, int64_t c) {
  return int(min(s.chunk, s.seq - c * s.chunk));
}

// Called by every thread of the block (it synchronizes, first of all so that a previous chunk's
// vectors are no longer being read).
__device__ Chunk load_chunk(ChunkSmem& cs, const SsdShape& s, const SsdInputs& in, int64_t b, int h, int64_t c) {
  Chunk ch;
  const int64_t t0 = c * s.chunk;
  ch.base = b * s.seq + t0;
  ch.len = chunk_len(s, c);
  ch.has_prev = t0 > 0;
  __syncthreads();
  for (int l = threadIdx.x; l < ch.len; l += blockDim.x) {
    cs.dt[l] = in.dt[(ch.base + l) * s.heads + h];
    cs.doc[l] = in.doc ? in.doc[ch.base + l] : 0;
  }
  const int32_t prev_doc = in.doc && ch.has_prev ? in.doc[ch.base - 1] : 0;
  __syncthreads();
  if (threadIdx.x == 0) {
    // Sequential, as on the CPU (run += A*dt without fusing), so every kernel sees the same
    // values; Q <= 256 adds are nothing next to the chunk's Q^2 (N+P) products.
    const float A = in.A[h];
    float run = 0.0f;
    for (int l = 0; l < ch.len; ++l) {
      run = __fadd_rn(run, __fmul_rn(A, cs.dt[l]));
      cs.acs[l] = run;
    }
  }
  __syncthreads();
  const int last = ch.len - 1;
  for (int l = threadIdx.x; l < ch.len; l += blockDim.x) {
    cs.e[l] = ch.has_prev && cs.doc[l] == prev_doc ? expf(cs.acs[l]) : 0.0f;
    cs.w[l] = cs.doc[l] == cs.doc[last] ? expf(cs.acs[last] - cs.acs[l]) : 0.0f;
  }
  ch.f = ch.has_prev && cs.doc[last] == prev_doc ? expf(cs.acs[last]) : 0.0f;  // == e[last]
  __syncthreads();
  return ch;
}

// M = (C B^T) o L on the chunk's lower triangle, zero across documents: the intra-chunk decay
// tile the forward's chunk scan and the backward's intra-chunk terms both build (a warp per row
// l, lanes over s; C and B rows padded to ldN so lanes hit distinct banks). The caller
// synchronizes after. TENSOR CORES: [Q, N] x [N, Q].
__device__ void masked_cb(float* M, int ldQ, const bf16* Cs, const bf16* Bs, int ldN, int N, const ChunkSmem& cs,
                          int len) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int l = warp; l < len; l += kWarps)
    for (int j = lane; j <= l; j += 32) {
      float v = 0.0f;
      if (cs.doc[j] == cs.doc[l]) {
        float dot = 0.0f;
        for (int n = 0; n < N; ++n) dot += to_f(Cs[l * ldN + n]) * to_f(Bs[j * ldN + n]);
        v = dot * expf(cs.acs[l] - cs.acs[j]);
      }
      M[l * ldQ + j] = v;
    }
}

// Index of (b, h, chunk c) in chunk_states-shaped buffers, in elements.
__device__ __forceinline__ int64_t state_offset(const SsdShape& s, int64_t b, int64_t h, int64_t c) {
  return ((b * s.heads + h) * num_chunks(s) + c) * s.head_dim * s.state;
}

// ---------------------------------------------------------------------------------------------
// chunk_state. Forward: out slot c+1 = sum_l (w_l X_l) (x) B_l (chunk c's own contribution to the
// next chunk's starting state); the block of the last chunk clears slot 0 (the first chunk starts
// from zero). Backward: out slot c-1 = sum_l (e_l dY_l) (x) C_l (the gradient chunk c's outputs
// send to its starting state, i.e. to the previous chunk's final state); chunk 0's block clears
// slot nc-1 (the last chunk's final state is not an output).
// Grid (chunks, heads, batch); smem U [Q][P] fp32, V [Q][N] bf16.
template <bool kBwd>
__global__ void __launch_bounds__(kThreads)
ssd_chunk_state_kernel(SsdShape s, SsdInputs in, const bf16* dy, float* out) {
  NEMOKIT_DYNAMIC_SHARED(__align__(16) unsigned char, smem);
  __shared__ ChunkSmem cs;
  const int64_t c = blockIdx.x, b = blockIdx.z, nc = num_chunks(s);
  const int h = blockIdx.y;
  const int P = int(s.head_dim), N = int(s.state), Q = int(s.chunk);
  const int g = h / int(s.heads / s.groups);
  const int64_t PN = int64_t(P) * N;
  const int64_t target = kBwd ? c - 1 : c + 1;
  if (target < 0 || target >= nc) {  // uniform over the block: returns before any barrier
    float* z = out + state_offset(s, b, h, kBwd ? nc - 1 : 0);
    for (int64_t i = threadIdx.x; i < PN; i += blockDim.x) z[i] = 0.0f;
    return;
  }
  const Chunk ch = load_chunk(cs, s, in, b, h, c);
  float* U = reinterpret_cast<float*>(smem);
  bf16* V = reinterpret_cast<bf16*>(U + Q * P);
  const int64_t ys = s.heads * s.head_dim;
  for (int i = threadIdx.x; i < ch.len * P; i += blockDim.x) {
    const int l = i / P, p = i % P;
    const int64_t r = ch.base + l;
    U[i] = kBwd ? cs.e[l] * to_f(dy[r * ys + h * P + p])
                : cs.w[l] * (to_f(in.x[r * in.stride + h * P + p]) * cs.dt[l]);
  }
  const bf16* src = kBwd ? in.C : in.B;
  for (int i = threadIdx.x; i < ch.len * N; i += blockDim.x) {
    const int l = i / N, n = i % N;
    V[i] = src[(ch.base + l) * in.stride + int64_t(g) * N + n];
  }
  __syncthreads();
  // TENSOR CORES: [P, len] x [len, N].
  float* o = out + state_offset(s, b, h, target);
  for (int64_t i = threadIdx.x; i < PN; i += blockDim.x) {
    const int p = int(i / N), n = int(i % N);  // a warp: one p (broadcast U), consecutive n
    float acc = 0.0f;
    for (int l = 0; l < ch.len; ++l) acc += U[l * P + p] * to_f(V[l * N + n]);
    o[i] = acc;
  }
}

// ---------------------------------------------------------------------------------------------
// state_passing, in place on the chunk_state output. Forward: slot c += f_{c-1} slot c-1 for
// c = 1..nc-1 (each slot then holds the state at its chunk's start). Backward: slot c-1 +=
// f_c slot c for c = nc-1..1 (each slot c then holds the gradient of chunk c's final state).
// Grid (ceil(P*N / threads), heads, batch): one state element per thread, chunks in sequence.
template <bool kBwd>
__global__ void __launch_bounds__(kThreads) ssd_state_passing_kernel(SsdShape s, SsdInputs in, float* states) {
  __shared__ ChunkSmem cs;
  const int64_t b = blockIdx.z, nc = num_chunks(s), PN = s.head_dim * s.state;
  const int h = blockIdx.y;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  float* hs = states + state_offset(s, b, h, 0);
  float run = 0.0f;  // the slot before the first one visited is zero
  for (int64_t k = 1; k < nc; ++k) {
    const int64_t slot = kBwd ? nc - 1 - k : k;
    const int64_t decay_chunk = kBwd ? slot + 1 : slot - 1;  // the chunk between the two slots
    const Chunk ch = load_chunk(cs, s, in, b, h, decay_chunk);  // every thread: it synchronizes
    if (i < PN) {
      run = hs[slot * PN + i] + ch.f * run;
      hs[slot * PN + i] = run;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// chunk_scan (forward): y_l = sum_{s<=l, same doc} (C_l . B_s) exp(acs_l - acs_s) X_s
//                             + e_l C_l . S_c + D x_l.
// Grid (chunks, heads, batch). Smem: C, B bf16 [Q][N+2]; M fp32 [Q][Q+1]; X fp32 [Q][P];
// S fp32 [P][N+1]. About 190 KiB for Q=128, P=64, N=128 (opt-in shared memory).
__global__ void __launch_bounds__(kThreads)
ssd_chunk_scan_kernel(SsdShape s, SsdInputs in, const float* states, bf16* y) {
  NEMOKIT_DYNAMIC_SHARED(__align__(16) unsigned char, smem);
  __shared__ ChunkSmem cs;
  const int64_t c = blockIdx.x, b = blockIdx.z;
  const int h = blockIdx.y;
  const int P = int(s.head_dim), N = int(s.state), Q = int(s.chunk);
  const int g = h / int(s.heads / s.groups);
  const int ldN = N + 2, ldQ = Q + 1, ldS = N + 1;
  const Chunk ch = load_chunk(cs, s, in, b, h, c);
  const int len = ch.len;
  bf16* Cs = reinterpret_cast<bf16*>(smem);
  bf16* Bs = Cs + Q * ldN;
  float* M = reinterpret_cast<float*>(Bs + Q * ldN);
  float* Xs = M + Q * ldQ;
  float* Ss = Xs + Q * P;
  for (int i = threadIdx.x; i < len * N; i += blockDim.x) {
    const int l = i / N, n = i % N;
    const int64_t off = (ch.base + l) * in.stride + int64_t(g) * N + n;
    Cs[l * ldN + n] = in.C[off];
    Bs[l * ldN + n] = in.B[off];
  }
  for (int i = threadIdx.x; i < len * P; i += blockDim.x) {
    const int l = i / P, p = i % P;
    Xs[i] = to_f(in.x[(ch.base + l) * in.stride + h * P + p]) * cs.dt[l];
  }
  if (ch.has_prev) {
    const float* S = states + state_offset(s, b, h, c);
    for (int i = threadIdx.x; i < P * N; i += blockDim.x) Ss[(i / N) * ldS + i % N] = S[i];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  masked_cb(M, ldQ, Cs, Bs, ldN, N, cs, len);
  __syncthreads();
  // Y = M X + e o (C S^T) + D x (a warp per row, lanes over p). TENSOR CORES: [Q, Q] x [Q, P]
  // and [Q, N] x [N, P].
  const float Dh = in.D[h];
  const int64_t ys = s.heads * s.head_dim;
  for (int l = warp; l < len; l += kWarps) {
    const int64_t r = ch.base + l;
    const float el = cs.e[l];
    for (int p = lane; p < P; p += 32) {
      float acc = 0.0f;
      for (int j = 0; j <= l; ++j) acc += M[l * ldQ + j] * Xs[j * P + p];
      if (el != 0.0f) {
        float off = 0.0f;
        for (int n = 0; n < N; ++n) off += to_f(Cs[l * ldN + n]) * Ss[p * ldS + n];
        acc += el * off;
      }
      acc += Dh * to_f(in.x[r * in.stride + h * P + p]);
      y[r * ys + h * P + p] = __float2bfloat16(acc);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, the terms through the states (per (batch, chunk, head)), with S = state at the
// chunk's start and dS = gradient of its final state:
//   carried in:  y_l += e_l C_l . S       -> dacs_l += e_l dy_l . (C S^T)_l
//   handed on:   S_out = f S + sum_l w_l X_l (x) B_l
//                -> dX_l += w_l (B dS^T)_l, v_l = w_l X_l . (B dS^T)_l,
//                   dacs_l -= v_l, dacs_last += sum_l v_l + f <dS, S>
// dx += dX dt and ddt += dX . x are added here; dacs (per row, per head) is written to scratch for
// the intra-chunk kernel, which adds its own terms and turns it into ddt and dA. dB/dC of these
// terms are left to the group kernel.
// Smem: C, B bf16 [Q][N]; S, dS fp32 [P][N+1].
__global__ void __launch_bounds__(kThreads)
ssd_bwd_state_kernel(SsdShape s, SsdInputs in, const float* states, const float* dstates, const bf16* dy,
                     float* dx, float* ddt, float* dacs) {
  NEMOKIT_DYNAMIC_SHARED(__align__(16) unsigned char, smem);
  __shared__ ChunkSmem cs;
  __shared__ float red[kWarps];
  __shared__ float arow[kMaxChunk], vrow[kMaxChunk];
  const int64_t c = blockIdx.x, b = blockIdx.z, nc = num_chunks(s);
  const int h = blockIdx.y;
  const int P = int(s.head_dim), N = int(s.state), Q = int(s.chunk), H = int(s.heads);
  const int g = h / int(s.heads / s.groups);
  const int ldS = N + 1;
  const Chunk ch = load_chunk(cs, s, in, b, h, c);
  const int len = ch.len;
  const bool use_S = ch.has_prev, use_dS = c < nc - 1;
  bf16* Cs = reinterpret_cast<bf16*>(smem);
  bf16* Bs = Cs + Q * N;
  float* Ss = reinterpret_cast<float*>(Bs + Q * N);
  float* dSs = Ss + P * ldS;
  for (int i = threadIdx.x; i < len * N; i += blockDim.x) {
    const int l = i / N, n = i % N;
    const int64_t off = (ch.base + l) * in.stride + int64_t(g) * N + n;
    if (use_S) Cs[i] = in.C[off];
    if (use_dS) Bs[i] = in.B[off];
  }
  float part = 0.0f;
  const float* S = states + state_offset(s, b, h, c);
  const float* dS = dstates + state_offset(s, b, h, c);
  for (int i = threadIdx.x; i < P * N; i += blockDim.x) {
    const float sv = use_S ? S[i] : 0.0f, dv = use_dS ? dS[i] : 0.0f;
    const int k = (i / N) * ldS + i % N;
    if (use_S) Ss[k] = sv;
    if (use_dS) dSs[k] = dv;
    part += sv * dv;
  }
  const float dot_dS_S = block_sum(part, red);  // synchronizes: the tiles are loaded after it
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t ys = s.heads * s.head_dim;
  // A warp per row l, lanes over p (S, dS rows padded to N+1: distinct banks).
  // TENSOR CORES: C S^T and B dS^T are [Q, N] x [N, P].
  for (int l = warp; l < len; l += kWarps) {
    const int64_t r = ch.base + l;
    const float el = cs.e[l], wl = cs.w[l], dtl = cs.dt[l];
    const bool carried = use_S && el != 0.0f, handed = use_dS && wl != 0.0f;
    float off = 0.0f, v = 0.0f, q = 0.0f;
    for (int p = lane; p < P; p += 32) {
      if (carried) {
        float g2 = 0.0f;
        for (int n = 0; n < N; ++n) g2 += to_f(Cs[l * N + n]) * Ss[p * ldS + n];
        off += to_f(dy[r * ys + h * P + p]) * g2;
      }
      if (handed) {
        float g1 = 0.0f;
        for (int n = 0; n < N; ++n) g1 += to_f(Bs[l * N + n]) * dSs[p * ldS + n];
        const float xv = to_f(in.x[r * in.stride + h * P + p]);
        const float dX = wl * g1;
        dx[r * in.stride + h * P + p] += dX * dtl;
        q += dX * xv;
        v += (xv * dtl) * g1;
      }
    }
    off = warp_sum(off);
    v = warp_sum(v);
    q = warp_sum(q);
    if (lane == 0) {
      v *= wl;
      arow[l] = el * off - v;
      vrow[l] = v;
      if (handed) ddt[r * H + h] += q;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int l = 0; l < len; ++l) total += vrow[l];
    arow[len - 1] += total + ch.f * dot_dS_S;
  }
  __syncthreads();
  for (int l = threadIdx.x; l < len; l += blockDim.x) dacs[(ch.base + l) * H + h] = arow[l];
}

// ---------------------------------------------------------------------------------------------
// Backward, the intra-chunk quadratic form Y = M X, M = CB o L (per (batch, chunk, head)):
//   T = (dY X^T) o M  -> dacs_l += sum_s T[l,s], dacs_s -= sum_l T[l,s]
//   dX = M^T dY;  dx += D dy + dX dt;  dD += dy . x
// then the cumsum's backward: suffix_l = sum_{k>=l} dacs_k, ddt_l += suffix_l A + dX_l . x_l,
// dA += sum_l suffix_l dt_l (written as this block's partial, reduced in ssd_bwd_reduce_kernel).
// Smem: R1 = C, B bf16 [Q][N+2] (then T fp32 [Q][Q+1] once M is built); M fp32 [Q][Q+1];
// dy, x bf16 [Q][P+2]. About 160 KiB for Q=128, P=64, N=128.
__global__ void __launch_bounds__(kThreads)
ssd_bwd_intra_kernel(SsdShape s, SsdInputs in, const bf16* dy, float* dx, float* ddt, const float* dacs,
                     float* dA_part, float* dD_part) {
  NEMOKIT_DYNAMIC_SHARED(__align__(16) unsigned char, smem);
  __shared__ ChunkSmem cs;
  __shared__ float arow[kMaxChunk], ddrow[kMaxChunk];
  const int64_t c = blockIdx.x, b = blockIdx.z, nc = num_chunks(s);
  const int h = blockIdx.y;
  const int P = int(s.head_dim), N = int(s.state), Q = int(s.chunk), H = int(s.heads);
  const int g = h / int(s.heads / s.groups);
  const int ldN = N + 2, ldQ = Q + 1, ldP = P + 2;
  const Chunk ch = load_chunk(cs, s, in, b, h, c);
  const int len = ch.len;
  const size_t r1_bytes = max(size_t(2) * Q * ldN * sizeof(bf16), size_t(Q) * ldQ * sizeof(float));
  bf16* Cs = reinterpret_cast<bf16*>(smem);
  bf16* Bs = Cs + Q * ldN;
  float* T = reinterpret_cast<float*>(smem);  // aliases C, B once they are no longer read
  float* M = reinterpret_cast<float*>(smem + r1_bytes);
  bf16* dys = reinterpret_cast<bf16*>(M + Q * ldQ);
  bf16* xs = dys + Q * ldP;
  const int64_t ys = s.heads * s.head_dim;
  for (int i = threadIdx.x; i < len * N; i += blockDim.x) {
    const int l = i / N, n = i % N;
    const int64_t off = (ch.base + l) * in.stride + int64_t(g) * N + n;
    Cs[l * ldN + n] = in.C[off];
    Bs[l * ldN + n] = in.B[off];
  }
  for (int i = threadIdx.x; i < len * P; i += blockDim.x) {
    const int l = i / P, p = i % P;
    const int64_t r = ch.base + l;
    dys[l * ldP + p] = dy[r * ys + h * P + p];
    xs[l * ldP + p] = in.x[r * in.stride + h * P + p];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  masked_cb(M, ldQ, Cs, Bs, ldN, N, cs, len);
  __syncthreads();  // C, B are dead: T may overwrite them
  // T[l,s] = M[l,s] (dy_l . X_s), X_s = x_s dt_s. TENSOR CORES: [Q, P] x [P, Q].
  for (int l = warp; l < len; l += kWarps)
    for (int j = lane; j <= l; j += 32) {
      const float m = M[l * ldQ + j];
      float t = 0.0f;
      if (m != 0.0f) {
        float dot = 0.0f;
        for (int p = 0; p < P; ++p) dot += to_f(dys[l * ldP + p]) * to_f(xs[j * ldP + p]);
        t = m * (dot * cs.dt[j]);
      }
      T[l * ldQ + j] = t;
    }
  __syncthreads();
  // dacs: row sum minus column sum of T, plus what the state kernel left.
  for (int i = threadIdx.x; i < len; i += blockDim.x) {
    float a = dacs[(ch.base + i) * H + h];
    for (int j = 0; j <= i; ++j) a += T[i * ldQ + j];
    for (int l = i; l < len; ++l) a -= T[l * ldQ + i];
    arow[i] = a;
  }
  __syncthreads();
  const float A = in.A[h], Dh = in.D[h];
  if (threadIdx.x == 0) {  // the cumsum's backward: suffix sums, in the CPU's order
    float suffix = 0.0f, da = 0.0f;
    for (int l = len - 1; l >= 0; --l) {
      suffix += arow[l];
      arow[l] = suffix;
      da += suffix * cs.dt[l];
    }
    dA_part[(b * nc + c) * H + h] = da;
  }
  __syncthreads();
  // dX = M^T dY (a warp per row s, lanes over p), then dx, ddt, dD. TENSOR CORES: [Q, Q] x [Q, P].
  for (int j = warp; j < len; j += kWarps) {
    const int64_t r = ch.base + j;
    float q = 0.0f, dd = 0.0f;
    for (int p = lane; p < P; p += 32) {
      float dX = 0.0f;
      for (int l = j; l < len; ++l) dX += M[l * ldQ + j] * to_f(dys[l * ldP + p]);
      const float gy = to_f(dys[j * ldP + p]), xv = to_f(xs[j * ldP + p]);
      dx[r * in.stride + h * P + p] += Dh * gy + dX * cs.dt[j];
      q += dX * xv;
      dd += gy * xv;
    }
    q = warp_sum(q);
    dd = warp_sum(dd);
    if (lane == 0) {
      ddt[r * H + h] += arow[j] * A + q;
      ddrow[j] = dd;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.0f;
    for (int l = 0; l < len; ++l) t += ddrow[l];
    dD_part[(b * nc + c) * H + h] = t;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward dC (kDC) or dB (!kDC) for one (batch, chunk, group, tile of kTileRows rows), summed
// over the group's heads in order inside the block (B and C are shared by the heads of a group;
// this keeps the sum deterministic without a per-head buffer of rows*heads*state floats).
// With dML[l,s] = (dy_l . X_s) L[l,s] (s <= l, same document):
//   dC_l += sum_h [ sum_s dML[l,s] B_s + e_l dy_l S ]          ("own" rows l, other rows s)
//   dB_s += sum_h [ sum_l dML[l,s] C_l + w_s X_s dS ]          ("own" rows s, other rows l)
// Grid (chunks * tiles, groups, batch). Smem: V (B for dC, C for dB) bf16 [Q][N];
// other rows bf16 [Q][P+2]; own rows bf16 [R][P]; dML tile fp32 [R][Q+1]; acc fp32 [R][N].
template <bool kDC>
__global__ void __launch_bounds__(kThreads)
ssd_bwd_dbc_kernel(SsdShape s, SsdInputs in, const float* states, const float* dstates, const bf16* dy,
                   float* dBC) {
  NEMOKIT_DYNAMIC_SHARED(__align__(16) unsigned char, smem);
  __shared__ ChunkSmem cs;
  const int tiles = int((s.chunk + kTileRows - 1) / kTileRows);
  const int64_t c = blockIdx.x / tiles, b = blockIdx.z, nc = num_chunks(s);
  const int i0 = int(blockIdx.x % tiles) * kTileRows;
  const int g = blockIdx.y;
  const int len = chunk_len(s, c);
  if (i0 >= len) return;  // uniform over the block: before any barrier
  const int rows = min(kTileRows, len - i0);
  const int P = int(s.head_dim), N = int(s.state), Q = int(s.chunk);
  const int hpg = int(s.heads / s.groups);
  const int ldP = P + 2, ldQ = Q + 1;
  const int64_t base = b * s.seq + c * s.chunk, ys = s.heads * s.head_dim;
  float* acc = reinterpret_cast<float*>(smem);   // [R][N]
  float* Dm = acc + kTileRows * N;                // [R][Q+1]
  bf16* V = reinterpret_cast<bf16*>(Dm + kTileRows * ldQ);  // [Q][N]
  bf16* oth = V + Q * N;                          // [Q][P+2]
  bf16* own = oth + Q * ldP;                      // [R][P]
  const bf16* vsrc = kDC ? in.B : in.C;
  for (int i = threadIdx.x; i < len * N; i += blockDim.x) {
    const int l = i / N, n = i % N;
    V[i] = vsrc[(base + l) * in.stride + int64_t(g) * N + n];
  }
  for (int i = threadIdx.x; i < rows * N; i += blockDim.x) acc[i] = 0.0f;  // each thread owns its i
  for (int hk = 0; hk < hpg; ++hk) {
    const int h = g * hpg + hk;
    const Chunk ch = load_chunk(cs, s, in, b, h, c);  // its first barrier also ends the last head's reads
    // dC: own = dy rows of the tile, other = x of the chunk; dB: own = x rows, other = dy.
    for (int i = threadIdx.x; i < len * P; i += blockDim.x) {
      const int j = i / P, p = i % P;
      const int64_t r = base + j;
      oth[j * ldP + p] = kDC ? in.x[r * in.stride + h * P + p] : dy[r * ys + h * P + p];
    }
    for (int i = threadIdx.x; i < rows * P; i += blockDim.x) {
      const int il = i / P, p = i % P;
      const int64_t r = base + i0 + il;
      own[i] = kDC ? dy[r * ys + h * P + p] : in.x[r * in.stride + h * P + p];
    }
    __syncthreads();
    // dML between own row i and other row j (lanes over j: other rows padded to P+2).
    // TENSOR CORES: [R, P] x [P, Q].
    for (int k = threadIdx.x; k < rows * Q; k += blockDim.x) {
      const int il = k / Q, j = k % Q, i = i0 + il;
      float v = 0.0f;
      const bool valid = j < len && (kDC ? j <= i : j >= i) && cs.doc[i] == cs.doc[j];
      if (valid) {
        float dot = 0.0f;
        for (int p = 0; p < P; ++p) dot += to_f(own[il * P + p]) * to_f(oth[j * ldP + p]);
        // X = x dt: the dt of the row s (j for dC, i for dB); L = exp(acs_l - acs_s).
        v = kDC ? (dot * cs.dt[j]) * expf(cs.acs[i] - cs.acs[j]) : (dot * cs.dt[i]) * expf(cs.acs[j] - cs.acs[i]);
      }
      Dm[il * ldQ + j] = v;
    }
    __syncthreads();
    // acc += dML V (+ the state term, with S or dS read from global: coalesced over n, shared by
    // the tile through L1). TENSOR CORES: [R, Q] x [Q, N] and [R, P] x [P, N].
    const bool use_Z = kDC ? ch.has_prev : c < nc - 1;
    const float* Z = (kDC ? states : dstates) + state_offset(s, b, h, c);
    for (int k = threadIdx.x; k < rows * N; k += blockDim.x) {
      const int il = k / N, n = k % N, i = i0 + il;
      const int j0 = kDC ? 0 : i, j1 = kDC ? i + 1 : len;
      float a = 0.0f;
      for (int j = j0; j < j1; ++j) a += Dm[il * ldQ + j] * to_f(V[j * N + n]);
      const float coef = kDC ? cs.e[i] : cs.w[i] * cs.dt[i];
      if (use_Z && coef != 0.0f) {
        float z = 0.0f;
        for (int p = 0; p < P; ++p) z += to_f(own[il * P + p]) * Z[int64_t(p) * N + n];
        a += coef * z;
      }
      acc[k] += a;
    }
  }
  for (int k = threadIdx.x; k < rows * N; k += blockDim.x) {
    const int il = k / N, n = k % N;
    dBC[(base + i0 + il) * in.stride + int64_t(g) * N + n] += acc[k];
  }
}

// dA[h] += sum over (batch, chunk) of the partials, dD likewise, in a fixed order.
__global__ void ssd_bwd_reduce_kernel(int64_t parts, int H, const float* dA_part, const float* dD_part, float* dA,
                                      float* dD) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  float a = 0.0f, d = 0.0f;
  for (int64_t k = 0; k < parts; ++k) {
    a += dA_part[k * H + h];
    d += dD_part[k * H + h];
  }
  dA[h] += a;
  dD[h] += d;
}

// ---------------------------------------------------------------------------------------------
// Host side.

void check_shape(const SsdShape& s) {
  auto bad = [](const std::string& why) { throw std::invalid_argument("ssd: " + why); };
  if (s.batch < 0 || s.seq < 0 || s.heads < 1 || s.head_dim < 1 || s.groups < 1 || s.state < 1 || s.chunk < 1)
    bad("non-positive shape");
  if (s.heads % s.groups) bad("heads not a multiple of groups");
  if (s.chunk > kMaxChunk) bad("chunk " + std::to_string(s.chunk) + " > " + std::to_string(kMaxChunk));
  if (s.heads > 65535 || s.groups > 65535 || s.batch > 65535) bad("heads, groups or batch exceed the grid");
  const int64_t tiles = (s.chunk + kTileRows - 1) / kTileRows;
  if (s.num_chunks() * tiles > 0x7fffffff) bad("too many chunks for the grid");
}

// Opts a kernel into `bytes` of dynamic shared memory, or says which shape does not fit.
template <class Kernel>
void set_smem(Kernel* kernel, size_t bytes, const char* name) {
  int dev = 0, optin = 0;
  NEMOKIT_CUDA_CHECK(cudaGetDevice(&dev));
  NEMOKIT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  cudaFuncAttributes attr{};
  NEMOKIT_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  if (bytes + attr.sharedSizeBytes > size_t(optin))
    throw std::invalid_argument(std::string(name) + ": needs " + std::to_string(bytes + attr.sharedSizeBytes) +
                                " bytes of shared memory, the device allows " + std::to_string(optin) +
                                " (smaller chunk, head_dim or state)");
  NEMOKIT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

size_t chunk_state_smem(const SsdShape& s) {
  return size_t(s.chunk) * s.head_dim * sizeof(float) + size_t(s.chunk) * s.state * sizeof(bf16);
}
size_t chunk_scan_smem(const SsdShape& s) {
  const size_t Q = s.chunk, P = s.head_dim, N = s.state;
  return 2 * Q * (N + 2) * sizeof(bf16) + Q * (Q + 1) * sizeof(float) + Q * P * sizeof(float) +
         P * (N + 1) * sizeof(float);
}
size_t bwd_state_smem(const SsdShape& s) {
  const size_t Q = s.chunk, P = s.head_dim, N = s.state;
  return 2 * Q * N * sizeof(bf16) + 2 * P * (N + 1) * sizeof(float);
}
size_t bwd_intra_smem(const SsdShape& s) {
  const size_t Q = s.chunk, P = s.head_dim, N = s.state;
  const size_t r1 = std::max(2 * Q * (N + 2) * sizeof(bf16), Q * (Q + 1) * sizeof(float));
  return r1 + Q * (Q + 1) * sizeof(float) + 2 * Q * (P + 2) * sizeof(bf16);
}
size_t bwd_dbc_smem(const SsdShape& s) {
  const size_t Q = s.chunk, P = s.head_dim, N = s.state, R = kTileRows;
  return R * N * sizeof(float) + R * (Q + 1) * sizeof(float) + Q * N * sizeof(bf16) + Q * (P + 2) * sizeof(bf16) +
         R * P * sizeof(bf16);
}

struct BwdScratch {
  float *dstates, *dacs, *dA_part, *dD_part;
};
size_t align256(size_t n) { return (n + 255) / 256 * 256; }
BwdScratch carve(const SsdShape& s, void* ws, size_t* total) {
  const size_t nc = s.num_chunks();
  const size_t sizes[4] = {size_t(s.batch) * s.heads * nc * s.head_dim * s.state * sizeof(float),
                           size_t(s.batch) * s.seq * s.heads * sizeof(float),
                           size_t(s.batch) * nc * s.heads * sizeof(float),
                           size_t(s.batch) * nc * s.heads * sizeof(float)};
  float* p[4];
  size_t off = 0;
  for (int i = 0; i < 4; ++i) {
    p[i] = ws ? reinterpret_cast<float*>(static_cast<char*>(ws) + off) : nullptr;
    off += align256(sizes[i]);
  }
  if (total) *total = off;
  return {p[0], p[1], p[2], p[3]};
}

}  // namespace

void ssd_forward(const SsdShape& s, const SsdInputs& in, __nv_bfloat16* y, float* chunk_states,
                 cudaStream_t stream) {
  check_shape(s);
  if (s.batch == 0 || s.seq == 0) return;
  const unsigned nc = unsigned(s.num_chunks());
  const dim3 chunk_grid(nc, unsigned(s.heads), unsigned(s.batch));

  const size_t cs_bytes = chunk_state_smem(s);
  set_smem(ssd_chunk_state_kernel<false>, cs_bytes, "ssd_chunk_state_kernel");
  NEMOKIT_LAUNCH(chunk_grid, kThreads, cs_bytes, stream, ssd_chunk_state_kernel<false>)(s, in, nullptr, chunk_states);
  NEMOKIT_CUDA_LAUNCHED("ssd_chunk_state_kernel<fwd>");

  const dim3 pass_grid(unsigned((s.head_dim * s.state + kThreads - 1) / kThreads), unsigned(s.heads),
                       unsigned(s.batch));
  NEMOKIT_LAUNCH(pass_grid, kThreads, 0, stream, ssd_state_passing_kernel<false>)(s, in, chunk_states);
  NEMOKIT_CUDA_LAUNCHED("ssd_state_passing_kernel<fwd>");

  const size_t scan_bytes = chunk_scan_smem(s);
  set_smem(ssd_chunk_scan_kernel, scan_bytes, "ssd_chunk_scan_kernel");
  NEMOKIT_LAUNCH(chunk_grid, kThreads, scan_bytes, stream, ssd_chunk_scan_kernel)(s, in, chunk_states, y);
  NEMOKIT_CUDA_LAUNCHED("ssd_chunk_scan_kernel");
}

size_t ssd_backward_workspace_bytes(const SsdShape& s) {
  size_t total = 0;
  carve(s, nullptr, &total);
  return total;
}

void ssd_backward(const SsdShape& s, const SsdInputs& in, const float* chunk_states, const __nv_bfloat16* dy,
                  const SsdGrads& gr, void* workspace, cudaStream_t stream) {
  check_shape(s);
  if (s.batch == 0 || s.seq == 0) return;
  if (!workspace) throw std::invalid_argument("ssd_backward: no workspace");
  const BwdScratch ws = carve(s, workspace, nullptr);
  const int64_t nc = s.num_chunks();
  const dim3 chunk_grid(unsigned(nc), unsigned(s.heads), unsigned(s.batch));

  // 1. The state gradient each chunk's outputs send back, into the previous chunk's slot.
  const size_t cs_bytes = chunk_state_smem(s);
  set_smem(ssd_chunk_state_kernel<true>, cs_bytes, "ssd_chunk_state_kernel");
  NEMOKIT_LAUNCH(chunk_grid, kThreads, cs_bytes, stream, ssd_chunk_state_kernel<true>)(s, in, dy, ws.dstates);
  NEMOKIT_CUDA_LAUNCHED("ssd_chunk_state_kernel<bwd>");

  // 2. Passed backwards through the chunks: slot c = gradient of chunk c's final state.
  const dim3 pass_grid(unsigned((s.head_dim * s.state + kThreads - 1) / kThreads), unsigned(s.heads),
                       unsigned(s.batch));
  NEMOKIT_LAUNCH(pass_grid, kThreads, 0, stream, ssd_state_passing_kernel<true>)(s, in, ws.dstates);
  NEMOKIT_CUDA_LAUNCHED("ssd_state_passing_kernel<bwd>");

  // 3. Terms through the carried and handed-on states: dx, ddt (added), dacs (written).
  const size_t st_bytes = bwd_state_smem(s);
  set_smem(ssd_bwd_state_kernel, st_bytes, "ssd_bwd_state_kernel");
  NEMOKIT_LAUNCH(chunk_grid, kThreads, st_bytes, stream, ssd_bwd_state_kernel)
  (s, in, chunk_states, ws.dstates, dy, gr.dx, gr.ddt, ws.dacs);
  NEMOKIT_CUDA_LAUNCHED("ssd_bwd_state_kernel");

  // 4. Intra-chunk terms, D, and the cumsum's backward: dx, ddt (added), dA/dD partials.
  const size_t in_bytes = bwd_intra_smem(s);
  set_smem(ssd_bwd_intra_kernel, in_bytes, "ssd_bwd_intra_kernel");
  NEMOKIT_LAUNCH(chunk_grid, kThreads, in_bytes, stream, ssd_bwd_intra_kernel)
  (s, in, dy, gr.dx, gr.ddt, ws.dacs, ws.dA_part, ws.dD_part);
  NEMOKIT_CUDA_LAUNCHED("ssd_bwd_intra_kernel");

  // 5. dC and dB, summed over each group's heads.
  const int64_t tiles = (s.chunk + kTileRows - 1) / kTileRows;
  const dim3 group_grid(unsigned(nc * tiles), unsigned(s.groups), unsigned(s.batch));
  const size_t bc_bytes = bwd_dbc_smem(s);
  set_smem(ssd_bwd_dbc_kernel<true>, bc_bytes, "ssd_bwd_dbc_kernel<dC>");
  NEMOKIT_LAUNCH(group_grid, kThreads, bc_bytes, stream, ssd_bwd_dbc_kernel<true>)(s, in, chunk_states, ws.dstates, dy, gr.dC);
  NEMOKIT_CUDA_LAUNCHED("ssd_bwd_dbc_kernel<dC>");
  set_smem(ssd_bwd_dbc_kernel<false>, bc_bytes, "ssd_bwd_dbc_kernel<dB>");
  NEMOKIT_LAUNCH(group_grid, kThreads, bc_bytes, stream, ssd_bwd_dbc_kernel<false>)(s, in, chunk_states, ws.dstates, dy, gr.dB);
  NEMOKIT_CUDA_LAUNCHED("ssd_bwd_dbc_kernel<dB>");

  // 6. dA, dD.
  NEMOKIT_LAUNCH(unsigned((s.heads + 127) / 128), 128, 0, stream, ssd_bwd_reduce_kernel)
  (s.batch * nc, int(s.heads), ws.dA_part, ws.dD_part, gr.dA, gr.dD);
  NEMOKIT_CUDA_LAUNCHED("ssd_bwd_reduce_kernel");
}

}  // namespace nemokit::rt::cuda
