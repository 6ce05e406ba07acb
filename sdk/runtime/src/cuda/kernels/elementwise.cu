#include "cuda_check.cuh"
#include "elementwise.cuh"

namespace nemokit::rt::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return int((n + kThreads - 1) / kThreads); }

__global__ void relu2_forward_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = fmaxf(__bfloat162float(x[i]), 0.0f);
  y[i] = __float2bfloat16(v * v);
}

__global__ void relu2_backward_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                                      int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = fmaxf(__bfloat162float(x[i]), 0.0f);
  dx[i] = __float2bfloat16(__bfloat162float(dx[i]) + 2.0f * v * __bfloat162float(dy[i]));
}

}  // namespace

void relu2_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  relu2_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n);
  NEMOKIT_CUDA_LAUNCHED("relu2_forward_kernel");
}

void relu2_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return;
  relu2_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, x, n);
  NEMOKIT_CUDA_LAUNCHED("relu2_backward_kernel");
}

}  // namespace nemokit::rt::cuda
