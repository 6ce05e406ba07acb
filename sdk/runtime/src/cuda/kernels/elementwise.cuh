// Elementwise kernels: squared ReLU (the MLP's and experts' activation) and SiLU (Mamba's
// activation of the convolution output).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace nemokit::rt::cuda {

// y = relu(x)^2
void relu2_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream);
// dx += dy * 2 relu(x)
void relu2_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n,
                    cudaStream_t stream);

// y = silu(x) = x * sigmoid(x)
void silu_forward(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream);
// dx += dy * silu'(x), silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
void silu_backward(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x, int64_t n,
                   cudaStream_t stream);

}  // namespace nemokit::rt::cuda
