// Mamba2 state-space duality (SSD) scan on the CPU, chunk by chunk as in the reference
// "ssd_minimal" formulation: within a chunk the output is a masked quadratic form
// (C_l . B_s) exp(Acs_l - Acs_s) X_s, and a P x N state carries the history between chunks.
// Packed rows: positions of different documents never interact and the carried state is
// dropped at a document start.
#include <cmath>
#include <cstring>
#include <vector>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {
namespace {

struct ChunkView {
  int64_t b, h, g, t0, len;
  int64_t row(int64_t l) const { return t0 + l; }  // position within the sequence
};

inline bool same_doc(const int32_t* doc, int64_t ra, int64_t rb) { return !doc || doc[ra] == doc[rb]; }

// Cumulative log-decay Acs and the dt-scaled inputs X of one chunk.
void load_chunk(const SsdShape& s, const SsdInputs& in, const ChunkView& cv, std::vector<float>& acs,
                std::vector<float>& X) {
  const int64_t P = s.head_dim;
  float run = 0;
  for (int64_t l = 0; l < cv.len; ++l) {
    int64_t r = cv.b * s.seq + cv.row(l);
    float dt = in.dt[r * s.heads + cv.h];
    run += in.A[cv.h] * dt;
    acs[l] = run;
    const float* x = in.x + r * in.stride + cv.h * P;
    for (int64_t p = 0; p < P; ++p) X[l * P + p] = x[p] * dt;
  }
}

}  // namespace

void ssd_forward(const SsdShape& s, const SsdInputs& in, float* y, float* chunk_states) {
  const int64_t H = s.heads, P = s.head_dim, N = s.state, nc = s.num_chunks();
  const int64_t heads_per_group = H / s.groups;
  parallel_for(s.batch * H, [&](int64_t i0, int64_t i1) {
    std::vector<float> acs(s.chunk), X(s.chunk * P), state(P * N);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      std::fill(state.begin(), state.end(), 0.0f);
      for (int64_t c = 0; c < nc; ++c) {
        ChunkView cv{b, h, g, c * s.chunk, std::min(s.chunk, s.seq - c * s.chunk)};
        std::memcpy(chunk_states + ((b * H + h) * nc + c) * P * N, state.data(), sizeof(float) * P * N);
        load_chunk(s, in, cv, acs, X);
        const int64_t base = b * s.seq + cv.t0;
        for (int64_t l = 0; l < cv.len; ++l) {
          const int64_t r = base + l;
          const float* Cl = in.C + r * in.stride + g * N;
          const float* xl = in.x + r * in.stride + h * P;
          float* yl = y + r * H * P + h * P;
          for (int64_t p = 0; p < P; ++p) yl[p] = in.D[h] * xl[p];
          for (int64_t sidx = 0; sidx <= l; ++sidx) {
            if (!same_doc(in.doc, base + sidx, r)) continue;
            const float* Bs = in.B + (base + sidx) * in.stride + g * N;
            float cb = 0;
            for (int64_t n = 0; n < N; ++n) cb += Cl[n] * Bs[n];
            float coef = cb * std::exp(acs[l] - acs[sidx]);
            for (int64_t p = 0; p < P; ++p) yl[p] += coef * X[sidx * P + p];
          }
          if (cv.t0 > 0 && same_doc(in.doc, base - 1, r)) {
            float e = std::exp(acs[l]);
            for (int64_t p = 0; p < P; ++p) {
              float hc = 0;
              for (int64_t n = 0; n < N; ++n) hc += state[p * N + n] * Cl[n];
              yl[p] += e * hc;
            }
          }
        }
        // Carry: decay the old state through the chunk, add this chunk's contributions.
        const int64_t last = cv.len - 1, rlast = base + last;
        float f = (cv.t0 > 0 && same_doc(in.doc, base - 1, rlast)) ? std::exp(acs[last]) : 0.0f;
        for (float& v : state) v *= f;
        for (int64_t sidx = 0; sidx < cv.len; ++sidx) {
          if (!same_doc(in.doc, base + sidx, rlast)) continue;
          const float* Bs = in.B + (base + sidx) * in.stride + g * N;
          float w = std::exp(acs[last] - acs[sidx]);
          for (int64_t p = 0; p < P; ++p) {
            float xp = w * X[sidx * P + p];
            for (int64_t n = 0; n < N; ++n) state[p * N + n] += xp * Bs[n];
          }
        }
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
  const int64_t heads_per_group = H / s.groups, rows = s.batch * s.seq;
  std::vector<float> dBh(size_t(rows * H * N), 0.0f), dCh(size_t(rows * H * N), 0.0f);
  std::vector<float> dA_part(size_t(s.batch * H), 0.0f), dD_part(size_t(s.batch * H), 0.0f);

  parallel_for(s.batch * H, [&](int64_t i0, int64_t i1) {
    std::vector<float> acs(s.chunk), X(s.chunk * P), dX(s.chunk * P), dacs(s.chunk);
    std::vector<float> dstate(P * N), dstate_in(P * N), hc(P), dhb(P);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H, g = h / heads_per_group;
      std::fill(dstate.begin(), dstate.end(), 0.0f);
      for (int64_t c = nc - 1; c >= 0; --c) {
        ChunkView cv{b, h, g, c * s.chunk, std::min(s.chunk, s.seq - c * s.chunk)};
        const float* state = chunk_states + ((b * H + h) * nc + c) * P * N;
        load_chunk(s, in, cv, acs, X);
        std::fill(dX.begin(), dX.end(), 0.0f);
        std::fill(dacs.begin(), dacs.end(), 0.0f);
        std::fill(dstate_in.begin(), dstate_in.end(), 0.0f);
        const int64_t base = b * s.seq + cv.t0;
        auto dB_at = [&](int64_t r) { return dBh.data() + (r * H + h) * N; };
        auto dC_at = [&](int64_t r) { return dCh.data() + (r * H + h) * N; };

        for (int64_t l = 0; l < cv.len; ++l) {
          const int64_t r = base + l;
          const float* Cl = in.C + r * in.stride + g * N;
          const float* xl = in.x + r * in.stride + h * P;
          const float* dyl = dy + r * H * P + h * P;
          float* dCl = dC_at(r);
          // D skip
          float dd = 0;
          for (int64_t p = 0; p < P; ++p) {
            gr.dx[r * in.stride + h * P + p] += in.D[h] * dyl[p];
            dd += dyl[p] * xl[p];
          }
          dD_part[b * H + h] += dd;
          // intra-chunk quadratic term
          for (int64_t sidx = 0; sidx <= l; ++sidx) {
            if (!same_doc(in.doc, base + sidx, r)) continue;
            const float* Bs = in.B + (base + sidx) * in.stride + g * N;
            float cb = 0;
            for (int64_t n = 0; n < N; ++n) cb += Cl[n] * Bs[n];
            float decay = std::exp(acs[l] - acs[sidx]);
            float dm = 0;
            for (int64_t p = 0; p < P; ++p) {
              dm += dyl[p] * X[sidx * P + p];
              dX[sidx * P + p] += cb * decay * dyl[p];
            }
            float dcb = dm * decay;
            float* dBs = dB_at(base + sidx);
            for (int64_t n = 0; n < N; ++n) {
              dCl[n] += dcb * Bs[n];
              dBs[n] += dcb * Cl[n];
            }
            float t = dm * cb * decay;
            dacs[l] += t;
            dacs[sidx] -= t;
          }
          // term from the state carried into the chunk
          if (cv.t0 > 0 && same_doc(in.doc, base - 1, r)) {
            float e = std::exp(acs[l]);
            float dot = 0;
            for (int64_t p = 0; p < P; ++p) {
              float v = 0;
              for (int64_t n = 0; n < N; ++n) v += state[p * N + n] * Cl[n];
              dot += dyl[p] * v;
              for (int64_t n = 0; n < N; ++n) {
                dCl[n] += e * dyl[p] * state[p * N + n];
                dstate_in[p * N + n] += e * dyl[p] * Cl[n];
              }
            }
            dacs[l] += e * dot;
          }
        }
        // state handed to the next chunk
        const int64_t last = cv.len - 1, rlast = base + last;
        if (cv.t0 > 0 && same_doc(in.doc, base - 1, rlast)) {
          float f = std::exp(acs[last]);
          float dot = 0;
          for (int64_t k = 0; k < P * N; ++k) {
            dstate_in[k] += f * dstate[k];
            dot += dstate[k] * state[k];
          }
          dacs[last] += f * dot;
        }
        for (int64_t sidx = 0; sidx < cv.len; ++sidx) {
          if (!same_doc(in.doc, base + sidx, rlast)) continue;
          const float* Bs = in.B + (base + sidx) * in.stride + g * N;
          float* dBs = dB_at(base + sidx);
          float w = std::exp(acs[last] - acs[sidx]);
          float v = 0;
          for (int64_t p = 0; p < P; ++p) {
            float acc = 0;
            for (int64_t n = 0; n < N; ++n) acc += dstate[p * N + n] * Bs[n];
            dX[sidx * P + p] += w * acc;
            v += X[sidx * P + p] * acc;
            float xp = w * X[sidx * P + p];
            for (int64_t n = 0; n < N; ++n) dBs[n] += xp * dstate[p * N + n];
          }
          dacs[last] += w * v;
          dacs[sidx] -= w * v;
        }
        // Acs is an inclusive cumsum of a = A*dt; X = x*dt.
        float suffix = 0;
        for (int64_t l = cv.len - 1; l >= 0; --l) {
          suffix += dacs[l];
          const int64_t r = base + l;
          const float dt = in.dt[r * H + h];
          const float* xl = in.x + r * in.stride + h * P;
          float ddt = suffix * in.A[h];
          for (int64_t p = 0; p < P; ++p) {
            gr.dx[r * in.stride + h * P + p] += dX[l * P + p] * dt;
            ddt += dX[l * P + p] * xl[p];
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
