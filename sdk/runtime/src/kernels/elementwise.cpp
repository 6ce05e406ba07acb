#include <cmath>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

float silu(float x) { return x / (1.0f + std::exp(-x)); }

float silu_grad(float x) {
  float s = 1.0f / (1.0f + std::exp(-x));
  return s * (1.0f + x * (1.0f - s));
}

// Same threshold as torch.nn.functional.softplus (beta 1, threshold 20).
float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

void relu2_forward(float* y, const float* x, int64_t n) {
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) y[i] = x[i] > 0 ? x[i] * x[i] : 0.0f;
  });
}

void relu2_backward(float* dx, const float* dy, const float* x, int64_t n) {
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) dx[i] += x[i] > 0 ? 2.0f * x[i] * dy[i] : 0.0f;
  });
}

}  // namespace nemokit::rt::kernels
