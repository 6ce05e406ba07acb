// Mamba2 state-space duality (SSD) scan on the CPU, chunk by chunk as in the reference
// "ssd_minimal" formulation. Within a chunk of length Q the output is a masked quadratic
// form Y = (C B^T o L) X with L[l,s] = exp(Acs_l - Acs_s), plus the contribution of the P x N
// state carried in from earlier chunks; the chunk then hands on its decayed state. Each
// piece is a small matrix product (OpenBLAS, single-threaded inside the (batch, head) tasks).
// Packed rows: positions of different documents never interact and the carried state is
// dropped at a document start.
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "blas_threads.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {
namespace {

inline bool same_doc(const int32_t* doc, int64_t ra, int64_t rb) { return !doc || doc[ra] == doc[rb]; }

// Row-major C[M,N] = alpha * op(A) op(B) + beta * C.
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// Everything one (batch, head, chunk) step needs, recomputed identically by both passes.
struct Chunk {
  int64_t base, len;       // first row (b*seq + t0) and length
  bool has_prev;           // a chunk before it exists in this sequence
  std::vector<float> acs;  // inclusive cumsum of a = A*dt
  std::vector<float> X;    // [len, P] dt-scaled inputs
  std::vector<float> L;    // [len, len] masked decay exp(Acs_l - Acs_s), 0 outside (s<=l, same doc)
  std::vector<float> e;    // [len] exp(Acs_l) where the carried state reaches l, else 0
  std::vector<float> w;    // [len] exp(Acs_last - Acs_s) where s reaches the chunk's end, else 0
  float f = 0;             // decay of the carried state through the whole chunk (0 if cut)

  void load(const SsdShape& s, const SsdInputs& in, int64_t b, int64_t h, int64_t c) {
    const int64_t P = s.head_dim, t0 = c * s.chunk;
    base = b * s.seq + t0;
    len = std::min(s.chunk, s.seq - t0);
    has_prev = t0 > 0;
    acs.resize(len), X.resize(len * P), L.assign(len * len, 0.0f), e.resize(len), w.resize(len);
    float run = 0;
    for (int64_t l = 0; l < len; ++l) {
      const int64_t r = base + l;
      const float dt = in.dt[r * s.heads + h];
      run += in.A[h] * dt;
      acs[l] = run;
      const float* x = in.x + r * in.stride + h * P;
      for (int64_t p = 0; p < P; ++p) X[l * P + p] = x[p] * dt;
    }
    const int64_t last = len - 1;
    for (int64_t l = 0; l < len; ++l) {
      float* Ll = L.data() + l * len;
      for (int64_t k = 0; k <= l; ++k) Ll[k] = exp_fast(acs[l] - acs[k]);
      if (in.doc)
        for (int64_t k = 0; k <= l; ++k)
          if (in.doc[base + k] != in.doc[base + l]) Ll[k] = 0.0f;
      e[l] = has_prev && same_doc(in.doc, base - 1, base + l) ? std::exp(acs[l]) : 0.0f;
      w[l] = same_doc(in.doc, base + l, base + last) ? std::exp(acs[last] - acs[l]) : 0.0f;
    }
    f = e[last];
  }
};

}  // namespace

void ssd_forward(const SsdShape& s, const SsdInputs& in, float* y, float* chunk_states) {
  const int64_t H = s.heads, P = s.head_dim, N = s.state, nc = s.num_chunks();
  const int64_t heads_per_group = H / s.groups, ys = H * P;
  ensure_single_threaded_blas();
  parallel_for(s.batch * H, [&](int64_t i0, int64_t i1) {
    Chunk ch;
    std::vector<float> state(P * N), M(s.chunk * s.chunk), tmp(s.chunk * std::max(P, N));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      std::fill(state.begin(), state.end(), 0.0f);
      for (int64_t c = 0; c < nc; ++c) {
        std::memcpy(chunk_states + ((b * H + h) * nc + c) * P * N, state.data(), sizeof(float) * P * N);
        ch.load(s, in, b, h, c);
        const int64_t len = ch.len;
        const float* Bc = in.B + ch.base * in.stride + g * N;
        const float* Cc = in.C + ch.base * in.stride + g * N;
        float* yc = y + ch.base * ys + h * P;
        // M = (C B^T) o L, then Y = M X
        gemm(false, true, len, len, N, 1.0f, Cc, in.stride, Bc, in.stride, 0.0f, M.data(), len);
        for (int64_t k = 0; k < len * len; ++k) M[k] *= ch.L[k];
        gemm(false, false, len, P, len, 1.0f, M.data(), len, ch.X.data(), P, 0.0f, yc, ys);
        // + e_l * C_l . state  (rows of C scaled by e, times state^T)
        if (ch.has_prev && ch.e[0] + ch.e[len - 1] > 0) {
          for (int64_t l = 0; l < len; ++l)
            for (int64_t n = 0; n < N; ++n) tmp[l * N + n] = ch.e[l] * Cc[l * in.stride + n];
          gemm(false, true, len, P, N, 1.0f, tmp.data(), N, state.data(), N, 1.0f, yc, ys);
        }
        // + D x
        for (int64_t l = 0; l < len; ++l) {
          const float* x = in.x + (ch.base + l) * in.stride + h * P;
          for (int64_t p = 0; p < P; ++p) yc[l * ys + p] += in.D[h] * x[p];
        }
        // state = f * state + (w o X)^T B
        for (float& v : state) v *= ch.f;
        for (int64_t l = 0; l < len; ++l)
          for (int64_t p = 0; p < P; ++p) tmp[l * P + p] = ch.w[l] * ch.X[l * P + p];
        gemm(true, false, P, N, len, 1.0f, tmp.data(), P, Bc, in.stride, 1.0f, state.data(), N);
      }
    }
  });
}

// Reverse-mode of ssd_forward, chunks in reverse order with the state gradient carried
// backwards. B and C are shared by the heads of a group, so their gradients go to per-head
// buffers first and are summed over the group afterwards in a fixed order.
void ssd_backward(const SsdShape& s, const SsdInputs& in, const float* chunk_states, const float* dy,
                  const SsdGrads& gr) {
  const int64_t H = s.heads, P = s.head_dim, N = s.state, nc = s.num_chunks();
  const int64_t heads_per_group = H / s.groups, rows = s.batch * s.seq, ys = H * P, hs = H * N;
  // Kept per calling thread between calls: fresh buffers of this size cost page faults.
  // (Named references: a thread_local used inside the worker lambdas would be the worker's.)
  thread_local std::vector<float> dB_buffer, dC_buffer;
  std::vector<float>& dBh = dB_buffer;
  std::vector<float>& dCh = dC_buffer;
  dBh.assign(size_t(rows * H * N), 0.0f), dCh.assign(size_t(rows * H * N), 0.0f);
  std::vector<float> dA_part(size_t(s.batch * H), 0.0f), dD_part(size_t(s.batch * H), 0.0f);
  ensure_single_threaded_blas();

  parallel_for(s.batch * H, [&](int64_t i0, int64_t i1) {
    const int64_t Q = s.chunk;
    Chunk ch;
    std::vector<float> M(Q * Q), dM(Q * Q), dX(Q * P), dacs(Q), tmp(Q * std::max(P, N)), G(Q * P);
    std::vector<float> dstate(P * N), dstate_in(P * N);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      std::fill(dstate.begin(), dstate.end(), 0.0f);
      for (int64_t c = nc - 1; c >= 0; --c) {
        const float* state = chunk_states + ((b * H + h) * nc + c) * P * N;
        ch.load(s, in, b, h, c);
        const int64_t len = ch.len, last = len - 1;
        const float* Bc = in.B + ch.base * in.stride + g * N;
        const float* Cc = in.C + ch.base * in.stride + g * N;
        const float* dyc = dy + ch.base * ys + h * P;
        float* dBc = dBh.data() + (ch.base * H + h) * N;
        float* dCc = dCh.data() + (ch.base * H + h) * N;
        std::fill(dacs.begin(), dacs.end(), 0.0f);
        std::fill(dstate_in.begin(), dstate_in.end(), 0.0f);

        // D skip
        float dd = 0;
        for (int64_t l = 0; l < len; ++l) {
          const float* x = in.x + (ch.base + l) * in.stride + h * P;
          float* dx = gr.dx + (ch.base + l) * in.stride + h * P;
          for (int64_t p = 0; p < P; ++p) {
            dx[p] += in.D[h] * dyc[l * ys + p];
            dd += dyc[l * ys + p] * x[p];
          }
        }
        dD_part[b * H + h] += dd;

        // Intra-chunk: Y = M X with M = CB o L
        gemm(false, true, len, len, N, 1.0f, Cc, in.stride, Bc, in.stride, 0.0f, M.data(), len);  // CB
        gemm(false, true, len, len, P, 1.0f, dyc, ys, ch.X.data(), P, 0.0f, dM.data(), len);        // dM = dY X^T
        for (int64_t l = 0; l < len; ++l)
          for (int64_t k = 0; k < len; ++k) {
            const int64_t idx = l * len + k;
            const float t = dM[idx] * M[idx] * ch.L[idx];  // dM o CB o L: gradient w.r.t. the exponent
            dacs[l] += t;
            dacs[k] -= t;
            M[idx] *= ch.L[idx];         // M
            dM[idx] *= ch.L[idx];        // gradient w.r.t. CB
          }
        gemm(true, false, len, P, len, 1.0f, M.data(), len, dyc, ys, 0.0f, dX.data(), P);  // dX = M^T dY
        gemm(false, false, len, N, len, 1.0f, dM.data(), len, Bc, in.stride, 1.0f, dCc, hs);  // dC += dCB B
        gemm(true, false, len, N, len, 1.0f, dM.data(), len, Cc, in.stride, 1.0f, dBc, hs);   // dB += dCB^T C

        // State carried in: Yoff_l = e_l * state C_l
        if (ch.has_prev && ch.e[0] + ch.e[last] > 0) {
          for (int64_t l = 0; l < len; ++l)
            for (int64_t p = 0; p < P; ++p) tmp[l * P + p] = ch.e[l] * dyc[l * ys + p];  // dY scaled by e
          gemm(false, false, len, N, P, 1.0f, tmp.data(), P, state, N, 1.0f, dCc, hs);       // dC += (e dY) S
          gemm(true, false, P, N, len, 1.0f, tmp.data(), P, Cc, in.stride, 1.0f, dstate_in.data(), N);
          gemm(false, true, len, P, N, 1.0f, Cc, in.stride, state, N, 0.0f, G.data(), P);   // C S^T
          for (int64_t l = 0; l < len; ++l) {
            float dot = 0;
            for (int64_t p = 0; p < P; ++p) dot += tmp[l * P + p] * G[l * P + p];
            dacs[l] += dot;
          }
        }

        // State handed on: S_out = f S_in + (w o X)^T B
        if (ch.f != 0.0f) {
          float dot = 0;
          for (int64_t k = 0; k < P * N; ++k) {
            dstate_in[k] += ch.f * dstate[k];
            dot += dstate[k] * state[k];
          }
          dacs[last] += ch.f * dot;
        }
        gemm(false, true, len, P, N, 1.0f, Bc, in.stride, dstate.data(), N, 0.0f, G.data(), P);  // G = B dS^T
        for (int64_t l = 0; l < len; ++l) {
          float v = 0;
          for (int64_t p = 0; p < P; ++p) {
            dX[l * P + p] += ch.w[l] * G[l * P + p];
            v += ch.X[l * P + p] * G[l * P + p];
            tmp[l * P + p] = ch.w[l] * ch.X[l * P + p];
          }
          v *= ch.w[l];
          dacs[last] += v;
          dacs[l] -= v;
        }
        gemm(false, false, len, N, P, 1.0f, tmp.data(), P, dstate.data(), N, 1.0f, dBc, hs);  // dB += (w o X) dS

        // Acs is an inclusive cumsum of a = A*dt; X = x*dt.
        float suffix = 0;
        for (int64_t l = len - 1; l >= 0; --l) {
          suffix += dacs[l];
          const int64_t r = ch.base + l;
          const float dt = in.dt[r * H + h];
          const float* x = in.x + r * in.stride + h * P;
          float* dx = gr.dx + r * in.stride + h * P;
          float ddt = suffix * in.A[h];
          for (int64_t p = 0; p < P; ++p) {
            dx[p] += dX[l * P + p] * dt;
            ddt += dX[l * P + p] * x[p];
          }
          gr.ddt[r * H + h] += ddt;
          dA_part[b * H + h] += suffix * dt;
        }
        dstate.swap(dstate_in);
      }
    }
  });

  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / heads_per_group;
        for (int64_t n = 0; n < N; ++n) {
          gr.dB[r * in.stride + g * N + n] += dBh[(r * H + h) * N + n];
          gr.dC[r * in.stride + g * N + n] += dCh[(r * H + h) * N + n];
        }
      }
  });
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < H; ++h) {
      gr.dA[h] += dA_part[b * H + h];
      gr.dD[h] += dD_part[b * H + h];
    }
}

}  // namespace nemokit::rt::kernels
