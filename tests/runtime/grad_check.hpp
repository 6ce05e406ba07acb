// Central finite differences against analytic gradients, for float kernels. The loss is
// accumulated in double; tolerances are relative to the gradient's norm over the samples.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace nemokit::rt::testing {

inline std::vector<float> random_vector(size_t n, std::mt19937& gen, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline double weighted_sum(const float* y, const std::vector<float>& w) {
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += double(y[i]) * w[i];
  return s;
}

// Compares analytic[i] with (loss(x+eps) - loss(x-eps)) / 2eps for up to `samples` indices.
inline void expect_grad_matches(const std::string& what, float* x, size_t n, const float* analytic,
                                const std::function<double()>& loss, float eps = 1e-2f, double rtol = 1e-2,
                                size_t samples = 64) {
  std::vector<size_t> idx;
  if (n <= samples) {
    for (size_t i = 0; i < n; ++i) idx.push_back(i);
  } else {
    std::mt19937 gen(1234);
    std::uniform_int_distribution<size_t> pick(0, n - 1);
    for (size_t s = 0; s < samples; ++s) idx.push_back(pick(gen));
  }
  double diff2 = 0, ref2 = 0, worst = 0;
  size_t worst_i = 0;
  for (size_t i : idx) {
    float saved = x[i];
    x[i] = saved + eps;
    double up = loss();
    x[i] = saved - eps;
    double down = loss();
    x[i] = saved;
    double numeric = (up - down) / (2.0 * eps);
    double d = analytic[i] - numeric;
    diff2 += d * d;
    ref2 += numeric * numeric;
    if (std::fabs(d) > worst) worst = std::fabs(d), worst_i = i;
  }
  double rel = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-12);
  EXPECT_LT(rel, rtol) << what << ": relative gradient error " << rel << " (worst index " << worst_i
                       << ", abs error " << worst << ", analytic " << analytic[worst_i] << ")";
  EXPECT_GT(ref2, 0.0) << what << ": numeric gradient is identically zero; the check would be vacuous";
}

}  // namespace nemokit::rt::testing
