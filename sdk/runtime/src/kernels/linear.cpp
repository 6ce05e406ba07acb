// Matrix products through OpenBLAS; weights are stored [out, in] as in torch.nn.Linear.
#include <cblas.h>

#include "nemokit/runtime/kernels.hpp"

namespace nemokit::rt::kernels {

void linear_forward(float* y, const float* x, const float* w, int64_t M, int64_t K, int64_t N) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, x, int(K), w, int(K),
              0.0f, y, int(N));
}

void linear_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, int64_t M,
                     int64_t K, int64_t N) {
  if (M == 0) return;
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(K), int(N), 1.0f, dy, int(N), w,
                int(K), 1.0f, dx, int(K));
  if (dw)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(N), int(K), int(M), 1.0f, dy, int(N), x, int(K),
                1.0f, dw, int(K));
}

}  // namespace nemokit::rt::kernels
