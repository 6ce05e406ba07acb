// Grouped-query attention without rotary embedding: causal as Nemotron-H uses it, or
// bidirectional (AttentionShape::causal = false) for the vision and audio encoders. Scores and
// their gradients are small matrix products per (batch, head) (OpenBLAS, single-threaded
// inside the runtime's tasks); the softmax probabilities are kept for the backward pass.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "blas_threads.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

// Query rows per block of the causal products: keys past the block's end are never needed.
constexpr int64_t kQueryBlock = 64;

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
      // Causal: query block [q0, q1) only needs keys [0, q1).
      for (int64_t q0 = 0; q0 < T; q0 += kQueryBlock) {
        const int64_t q1 = std::min(T, q0 + kQueryBlock), keys = s.causal ? q1 : T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(q1 - q0), int(keys), int(hd), scale, qb + q0 * qs,
                    int(qs), kb, int(ks), 0.0f, p + q0 * T, int(T));
        for (int64_t t = q0; t < q1; ++t) {
          float* row = p + t * T;
          const int64_t r = b * T + t, seen = s.causal ? t + 1 : T;
          float mx = -INFINITY;
          for (int64_t j = 0; j < seen; ++j)
            if (same_doc(doc, b * T + j, r)) mx = std::max(mx, row[j]);
          for (int64_t j = 0; j < seen; ++j) row[j] = exp_fast(row[j] - mx);
          for (int64_t j = seen; j < T; ++j) row[j] = 0.0f;
          if (doc)
            for (int64_t j = 0; j < seen; ++j)
              if (doc[b * T + j] != doc[r]) row[j] = 0.0f;
          float sum = 0;
          for (int64_t j = 0; j < seen; ++j) sum += row[j];
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < seen; ++j) row[j] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(q1 - q0), int(hd), int(keys), 1.0f, p + q0 * T,
                    int(T), vb, int(ks), 0.0f, out + (b * T + q0) * qs + h * hd, int(qs));
      }
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
        for (int64_t q0 = 0; q0 < T; q0 += kQueryBlock) {
          const int64_t q1 = std::min(T, q0 + kQueryBlock), m = q1 - q0, keys = s.causal ? q1 : T;
          const float* pb = p + q0 * T;
          float* db = dS.data() + q0 * T;
          // dV += P^T dO ; dP = dO V^T
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(keys), int(hd), int(m), 1.0f, pb, int(T),
                      dob + q0 * qs, int(qs), 1.0f, dvb, int(ks));
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(keys), int(hd), 1.0f, dob + q0 * qs, int(qs),
                      vb, int(ks), 0.0f, db, int(T));
          // dS = P o (dP - rowsum(P o dP)) * scale
          for (int64_t t = q0; t < q1; ++t) {
            const float* pr = p + t * T;
            float* dr = dS.data() + t * T;
            const int64_t seen = s.causal ? t + 1 : T;
            float dot = 0;
            for (int64_t j = 0; j < seen; ++j) dot += pr[j] * dr[j];
            for (int64_t j = 0; j < seen; ++j) dr[j] = pr[j] * (dr[j] - dot) * scale;
            for (int64_t j = seen; j < keys; ++j) dr[j] = 0.0f;
          }
          // dQ += dS K ; dK += dS^T Q
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(hd), int(keys), 1.0f, db, int(T), kb,
                      int(ks), 1.0f, dq + (b * T + q0) * qs + h * hd, int(qs));
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(keys), int(hd), int(m), 1.0f, db, int(T),
                      qb + q0 * qs, int(qs), 1.0f, dkb, int(ks));
        }
      }
    }
  });
}

}  // namespace nemokit::rt::kernels
