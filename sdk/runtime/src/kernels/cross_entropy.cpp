#include <cmath>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

// One pass per row: log-sum-exp for the loss (sum in double), then softmax - onehot for the
// gradient reusing the exponentials.
double cross_entropy(const float* logits, const int32_t* targets, int64_t rows, int64_t V, float* row_loss,
                     float* dlogits, float grad_scale) {
  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* z = logits + r * V;
      if (targets[r] < 0) {
        row_loss[r] = 0;
        continue;
      }
      float mx = z[0];
      for (int64_t i = 1; i < V; ++i) mx = std::max(mx, z[i]);
      double sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(z[i] - mx);
      const float lse = mx + float(std::log(sum));
      row_loss[r] = lse - z[targets[r]];
      if (dlogits) {
        float* d = dlogits + r * V;
        const float inv = float(1.0 / sum);
        for (int64_t i = 0; i < V; ++i) d[i] += grad_scale * std::exp(z[i] - mx) * inv;
        d[targets[r]] -= grad_scale;
      }
    }
  });
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return total;
}

}  // namespace nemokit::rt::kernels
