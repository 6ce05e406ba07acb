// Matrix products through OpenBLAS; weights are stored [out, in] as in torch.nn.Linear.
// OpenBLAS runs single-threaded and the products are split by output rows over the runtime's
// own thread pool: one set of threads for everything (no two pools spinning against each
// other on few cores), and each output element is computed by one call in a fixed order,
// so results are reproducible for a given thread count.
#include <cblas.h>

#include "blas_threads.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nemokit::rt::kernels {

void ensure_single_threaded_blas() {
  static const bool once = [] {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

namespace {

// Splits [0, n) into per-thread ranges when the product is large enough to be worth it.
void split(int64_t n, double flops, const std::function<void(int64_t, int64_t)>& fn) {
  if (flops < 2e6 || n < 2 * num_threads()) {
    fn(0, n);
    return;
  }
  parallel_for(num_threads(), [&](int64_t t0, int64_t t1) {
    const int64_t per = (n + num_threads() - 1) / num_threads();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t * per, b = std::min(n, a + per);
      if (a < b) fn(a, b);
    }
  });
}

}  // namespace

void linear_forward(float* y, const float* x, const float* w, int64_t M, int64_t K, int64_t N) {
  if (M == 0 || N == 0) return;
  ensure_single_threaded_blas();
  split(M, 2.0 * M * K * N, [&](int64_t a, int64_t b) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(b - a), int(N), int(K), 1.0f, x + a * K, int(K), w,
                int(K), 0.0f, y + a * N, int(N));
  });
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t M,
                     int64_t K, int64_t N) {
  if (M == 0) return;
  ensure_single_threaded_blas();
  if (dx)
    split(M, 2.0 * M * K * N, [&](int64_t a, int64_t b) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(b - a), int(K), int(N), 1.0f, dy + a * N, int(N), w,
                  int(K), 1.0f, dx + a * K, int(K));
    });
  if (dw)
    split(N, 2.0 * M * K * N, [&](int64_t a, int64_t b) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(b - a), int(K), int(M), 1.0f, dy + a, int(N), x,
                  int(K), 1.0f, dw + a * K, int(K));
    });
}

}  // namespace nemokit::rt::kernels
