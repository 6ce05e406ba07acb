#include <cmath>
#include <cstring>
#include <vector>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

// One pass per row for the exponentials (kept in the gradient row), the log-sum-exp in
// double, then one scaling pass turns them into softmax - onehot.
double cross_entropy(const float* logits, const int32_t* targets, int64_t rows, int64_t V, float* row_loss,
                     float* dlogits, float grad_scale, const float* row_weight) {
  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch(dlogits ? 0 : V);
    for (int64_t r = r0; r < r1; ++r) {
      const float* z = logits + r * V;
      float* ex = dlogits ? dlogits + r * V : scratch.data();
      if (targets[r] < 0) {
        row_loss[r] = 0;
        if (dlogits) std::memset(ex, 0, sizeof(float) * V);
        continue;
      }
      // Max and sum over 16 interleaved lanes (combined in a fixed order): the compiler
      // vectorizes these, and the result does not depend on the thread count.
      constexpr int kLanes = 16;
      float lane_max[kLanes], lane_sum[kLanes];
      for (int l = 0; l < kLanes; ++l) lane_max[l] = -INFINITY, lane_sum[l] = 0.0f;
      const int64_t full = V / kLanes * kLanes;
      for (int64_t i = 0; i < full; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane_max[l] = z[i + l] > lane_max[l] ? z[i + l] : lane_max[l];
      float mx = -INFINITY;
      for (int l = 0; l < kLanes; ++l) mx = std::max(mx, lane_max[l]);
      for (int64_t i = full; i < V; ++i) mx = std::max(mx, z[i]);
      for (int64_t i = 0; i < V; ++i) ex[i] = exp_fast(z[i] - mx);
      for (int64_t i = 0; i < full; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane_sum[l] += ex[i + l];
      double sum = 0;
      for (int l = 0; l < kLanes; ++l) sum += lane_sum[l];
      for (int64_t i = full; i < V; ++i) sum += ex[i];
      row_loss[r] = mx + float(std::log(sum)) - z[targets[r]];
      if (dlogits) {
        const float g = row_weight ? grad_scale * row_weight[r] : grad_scale;
        const float scale = float(g / sum);
        for (int64_t i = 0; i < V; ++i) ex[i] *= scale;
        ex[targets[r]] -= g;
      }
    }
  });
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) total += row_loss[r];
  return total;
}

}  // namespace nemokit::rt::kernels
