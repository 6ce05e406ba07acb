// RMSNorm over groups of features (group == C is the plain layer norm of the blocks; the
// Mamba gated norm uses group = d_inner / n_groups).
#include <cmath>
#include <vector>

#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::kernels {

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t C,
                     int64_t group, float eps) {
  int64_t groups = C / group;
  parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const float* xr = x + r * C + g * group;
        float* yr = y + r * C + g * group;
        const float* wr = w + g * group;
        double ss = 0;
        for (int64_t c = 0; c < group; ++c) ss += double(xr[c]) * xr[c];
        float s = 1.0f / std::sqrt(float(ss / group) + eps);
        rstd[r * groups + g] = s;
        for (int64_t c = 0; c < group; ++c) yr[c] = wr[c] * (xr[c] * s);
      }
    }
  });
}

// With n = x*rstd: dx = rstd * (dy*w - n * mean(dy*w*n)); dw = sum_rows dy*n.
// dw is reduced per thread range into partial rows, then summed in range order.
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      const float* rstd, int64_t rows, int64_t C, int64_t group) {
  int64_t groups = C / group;
  int parts = num_threads();
  std::vector<float> partial(dw ? size_t(parts) * C : 0, 0.0f);
  int64_t per = (rows + parts - 1) / parts;
  parallel_for(parts, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dwp = dw ? partial.data() + p * C : nullptr;
      for (int64_t r = p * per; r < std::min(rows, (p + 1) * per); ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          int64_t off = r * C + g * group;
          float s = rstd[r * groups + g];
          double dot = 0;
          for (int64_t c = 0; c < group; ++c) dot += double(dy[off + c]) * w[g * group + c] * x[off + c] * s;
          float mean = float(dot / group);
          for (int64_t c = 0; c < group; ++c) {
            float n = x[off + c] * s;
            if (dx) dx[off + c] += s * (dy[off + c] * w[g * group + c] - n * mean);
            if (dwp) dwp[g * group + c] += dy[off + c] * n;
          }
        }
      }
    }
  });
  if (dw)
    for (int p = 0; p < parts; ++p)
      for (int64_t c = 0; c < C; ++c) dw[c] += partial[size_t(p) * C + c];
}

}  // namespace nemokit::rt::kernels
