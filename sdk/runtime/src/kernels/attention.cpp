// Causal grouped-query attention without rotary embedding, as Nemotron-H uses it. Scores and
// their gradients are small matrix products per (batch, head) (OpenBLAS, single-threaded
// inside the runtime's tasks); the softmax probabilities are kept for the backward pass.
#include <cblas.h>

#include <cmath>
#include <vector>

#include "blas_threads.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

static inline bool same_doc(const int32_t* doc, int64_t a, int64_t b) { return !doc || doc[a] == doc[b]; }

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       const int32_t* doc, float* out, float* probs) {
  const int64_t T = s.seq, hd = s.head_dim, nh = s.heads, nkv = s.kv_heads;
  const int64_t rep = nh / nkv, qs = nh * hd, ks = nkv * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  ensure_single_threaded_blas();
  parallel_for(s.batch * nh, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nh, h = i % nh, kh = h / rep;
      const float* qb = q + b * T * qs + h * hd;
      const float* kb = k + b * T * ks + kh * hd;
      const float* vb = v + b * T * ks + kh * hd;
      float* p = probs + (b * nh + h) * T * T;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(T), int(hd), scale, qb, int(qs), kb, int(ks), 0.0f,
                  p, int(T));
      for (int64_t t = 0; t < T; ++t) {
        float* row = p + t * T;
        const int64_t r = b * T + t;
        float mx = -INFINITY;
        for (int64_t j = 0; j <= t; ++j)
          if (same_doc(doc, b * T + j, r)) mx = std::max(mx, row[j]);
        for (int64_t j = 0; j <= t; ++j) row[j] = exp_fast(row[j] - mx);
        for (int64_t j = t + 1; j < T; ++j) row[j] = 0.0f;
        if (doc)
          for (int64_t j = 0; j <= t; ++j)
            if (doc[b * T + j] != doc[r]) row[j] = 0.0f;
        float sum = 0;
        for (int64_t j = 0; j <= t; ++j) sum += row[j];
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j <= t; ++j) row[j] *= inv;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(hd), int(T), 1.0f, p, int(T), vb, int(ks), 0.0f,
                  out + b * T * qs + h * hd, int(qs));
    }
  });
}

// Parallel over (batch, kv head): the query heads sharing a kv head run in one task, so
// the dk/dv rows they add into are never written by two threads.
void attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                        const int32_t* doc, const float* probs, const float* dout, float* dq, float* dk,
                        float* dv) {
  (void)doc;  // masked positions have probability 0 and thus no gradient
  const int64_t T = s.seq, hd = s.head_dim, nh = s.heads, nkv = s.kv_heads;
  const int64_t rep = nh / nkv, qs = nh * hd, ks = nkv * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  ensure_single_threaded_blas();
  parallel_for(s.batch * nkv, [&](int64_t i0, int64_t i1) {
    std::vector<float> dS(T * T);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nkv, kh = i % nkv;
      const float* kb = k + b * T * ks + kh * hd;
      const float* vb = v + b * T * ks + kh * hd;
      float* dkb = dk + b * T * ks + kh * hd;
      float* dvb = dv + b * T * ks + kh * hd;
      for (int64_t h = kh * rep; h < (kh + 1) * rep; ++h) {
        const float* p = probs + (b * nh + h) * T * T;
        const float* qb = q + b * T * qs + h * hd;
        const float* dob = dout + b * T * qs + h * hd;
        // dV += P^T dO ; dP = dO V^T
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(T), int(hd), int(T), 1.0f, p, int(T), dob, int(qs), 1.0f,
                    dvb, int(ks));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(T), int(hd), 1.0f, dob, int(qs), vb, int(ks), 0.0f,
                    dS.data(), int(T));
        // dS = P o (dP - rowsum(P o dP)) * scale
        for (int64_t t = 0; t < T; ++t) {
          const float* pr = p + t * T;
          float* dr = dS.data() + t * T;
          float dot = 0;
          for (int64_t j = 0; j <= t; ++j) dot += pr[j] * dr[j];
          for (int64_t j = 0; j < T; ++j) dr[j] = j <= t ? pr[j] * (dr[j] - dot) * scale : 0.0f;
        }
        // dQ += dS K ; dK += dS^T Q
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(T), int(hd), int(T), 1.0f, dS.data(), int(T), kb, int(ks),
                    1.0f, dq + b * T * qs + h * hd, int(qs));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(T), int(hd), int(T), 1.0f, dS.data(), int(T), qb, int(qs),
                    1.0f, dkb, int(ks));
      }
    }
  });
}

}  // namespace nemokit::rt::kernels
