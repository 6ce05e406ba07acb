#include <algorithm>
#include <cmath>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

void relu2_forward(float* y, const float* x, int64_t n) {
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const float v = x[i];
      y[i] = v * v * float(v > 0.0f);  // a mask instead of a branch, so the loop vectorizes
    }
  });
}

void relu2_backward(float* dx, const float* dy, const float* x, int64_t n) {
  parallel_for(n, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) dx[i] += 2.0f * x[i] * dy[i] * float(x[i] > 0.0f);
  });
}

}  // namespace nemokit::rt::kernels
