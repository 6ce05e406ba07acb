// AdamW's element update, one loop for the whole-moment and the ZeRO-1 paths so that both give
// the same bits for the same gradient.
#pragma once
#include <cmath>
#include <cstdint>

#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {

struct AdamWStep {
  float lr, b1, b2, c1, c2, eps, weight_decay;
  AdamWStep(const AdamWConfig& c, float lr_, int64_t step)
      : lr(lr_), b1(c.beta1), b2(c.beta2), c1(1.0f - std::pow(c.beta1, float(step))),
        c2(1.0f - std::pow(c.beta2, float(step))), eps(c.eps), weight_decay(c.weight_decay) {}
};

// n elements: weights w, gradients g, moments m and v; `decay`: the parameter takes weight decay.
inline void adamw_update(const AdamWStep& s, bool decay, float* w, const float* g, float* m, float* v, int64_t n) {
  const float d = decay ? s.lr * s.weight_decay : 0.0f;
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t j = a; j < b; ++j) {
      m[j] = s.b1 * m[j] + (1.0f - s.b1) * g[j];
      v[j] = s.b2 * v[j] + (1.0f - s.b2) * g[j] * g[j];
      w[j] -= d * w[j];
      w[j] -= s.lr * (m[j] / s.c1) / (std::sqrt(v[j] / s.c2) + s.eps);
    }
  });
}

inline bool trained(const Parameter* p) { return p->trainable && !p->buffer && p->grad.defined(); }

}  // namespace nemokit::rt::detail
