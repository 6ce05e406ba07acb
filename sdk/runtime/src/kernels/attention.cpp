// Causal grouped-query attention without rotary embedding, as Nemotron-H uses it. The
// softmax probabilities are kept for the backward pass.
#include <cmath>
#include <vector>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

static inline bool same_doc(const int32_t* doc, int64_t a, int64_t b) { return !doc || doc[a] == doc[b]; }

void attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v,
                       const int32_t* doc, float* out, float* probs) {
  const int64_t T = s.seq, hd = s.head_dim, nh = s.heads, nkv = s.kv_heads;
  const int64_t rep = nh / nkv, qs = nh * hd, ks = nkv * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  parallel_for(s.batch * nh * T, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i % T, h = (i / T) % nh, b = i / (T * nh), kh = h / rep;
      const int64_t r = b * T + t;
      const float* qr = q + r * qs + h * hd;
      float* p = probs + ((b * nh + h) * T + t) * T;
      float mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        if (j > t || !same_doc(doc, b * T + j, r)) {
          p[j] = -INFINITY;
          continue;
        }
        const float* kr = k + (b * T + j) * ks + kh * hd;
        float dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += qr[d] * kr[d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        p[j] = p[j] == -INFINITY ? 0.0f : std::exp(p[j] - mx);
        sum += p[j];
      }
      for (int64_t j = t + 1; j < T; ++j) p[j] = 0.0f;
      float* o = out + r * qs + h * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] = 0;
      for (int64_t j = 0; j <= t; ++j) {
        p[j] /= sum;
        if (p[j] == 0.0f) continue;
        const float* vr = v + (b * T + j) * ks + kh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += p[j] * vr[d];
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
  parallel_for(s.batch * nkv, [&](int64_t i0, int64_t i1) {
    std::vector<float> dp(T);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / nkv, kh = i % nkv;
      for (int64_t h = kh * rep; h < (kh + 1) * rep; ++h) {
        for (int64_t t = 0; t < T; ++t) {
          const int64_t r = b * T + t;
          const float* p = probs + ((b * nh + h) * T + t) * T;
          const float* go = dout + r * qs + h * hd;
          float dot = 0;
          for (int64_t j = 0; j <= t; ++j) {
            dp[j] = 0;
            if (p[j] == 0.0f) continue;
            const float* vr = v + (b * T + j) * ks + kh * hd;
            float* dvr = dv + (b * T + j) * ks + kh * hd;
            float acc = 0;
            for (int64_t d = 0; d < hd; ++d) {
              acc += go[d] * vr[d];
              dvr[d] += p[j] * go[d];
            }
            dp[j] = acc;
            dot += p[j] * acc;
          }
          const float* qr = q + r * qs + h * hd;
          float* dqr = dq + r * qs + h * hd;
          for (int64_t j = 0; j <= t; ++j) {
            if (p[j] == 0.0f) continue;
            float ds = p[j] * (dp[j] - dot) * scale;
            const float* kr = k + (b * T + j) * ks + kh * hd;
            float* dkr = dk + (b * T + j) * ks + kh * hd;
            for (int64_t d = 0; d < hd; ++d) {
              dqr[d] += ds * kr[d];
              dkr[d] += ds * qr[d];
            }
          }
        }
      }
    }
  });
}

}  // namespace nemokit::rt::kernels
