// Matrix products of the model through cuBLASLt: bf16 A/B, fp32 compute (CUBLAS_COMPUTE_32F), bf16 or
// fp32 output, the GPU counterparts of kernels::linear_forward / linear_backward.
//
// Sizes need not be multiples of 8 (the model's are; odd ones, e.g. N = 131, or row-offset pointers
// only narrow cuBLASLt's choice to slower kernels, see the plan key). A product cuBLASLt has no
// algorithm for throws std::runtime_error naming its shape, strides and alignments.
//
// Squared ReLU (the MLP's and experts' activation) is not an epilogue here: cuBLASLt has no relu^2,
// and CUBLASLT_EPILOGUE_RELU_AUX would not save traffic, since relu(u) still needs a pass of its own
// to be squared and the backward reads relu(u) just as it reads u. So the up projection writes u
// with the plain product and relu2_forward/relu2_backward (elementwise.cuh) run as their own kernels.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace nemokit::rt::cuda {

// A cuBLASLt handle, its workspace and the plans (descriptors and chosen algorithm) of every product
// shape met so far, so repeated shapes never ask the heuristic again. Created on the current device;
// every call must run with that device current. Calls on one BlasLt share its workspace, so one
// BlasLt serves one stream (or streams ordered among themselves); calls are serialized by a mutex.
class BlasLt {
 public:
  // 32 MiB: what cuBLAS recommends on Hopper; the heuristic only picks algorithms that fit.
  static constexpr size_t kDefaultWorkspaceBytes = size_t(32) << 20;
  explicit BlasLt(size_t workspace_bytes = kDefaultWorkspaceBytes);
  ~BlasLt();
  BlasLt(const BlasLt&) = delete;
  BlasLt& operator=(const BlasLt&) = delete;

  size_t plans() const;  // shapes planned so far (a plan is keyed by ops, sizes, strides, types, alignments)

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// y[M,N] = x[M,K] w[N,K]^T (overwrites y).
void linear_forward(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M,
                    int64_t K, int64_t N, cudaStream_t stream);
// The same with fp32 output (logits of the loss, fp32 as the reference's lm_head).
void linear_forward(BlasLt& lt, float* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M, int64_t K,
                    int64_t N, cudaStream_t stream);
// y[M,N] = alpha x[M,K] w[N,K]^T, or with accumulate y += that (bf16 y read and written once by the
// product's epilogue): LoRA's adapter path, u = scale x A^T then y += u B^T.
void linear_forward_scaled(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M,
                           int64_t K, int64_t N, float alpha, bool accumulate, cudaStream_t stream);
// y[M,N] = x[M,K] w[N,K]^T + bias[N], the bias added in the product's epilogue (CUBLASLT_EPILOGUE_BIAS).
// The model's projections have no bias; this is for the layers that do.
void linear_bias_forward(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w,
                         const __nv_bfloat16* bias, int64_t M, int64_t K, int64_t N, cudaStream_t stream);
// dx[M,K] += dy[M,N] w[N,K] (bf16);  dw[N,K] += dy^T x (fp32, accumulated by the product itself with
// beta = 1, so gradient accumulation over micro-batches needs no extra buffer). Either may be null.
// alpha scales both products (LoRA's adapter gradients carry its scale).
void linear_backward(BlasLt& lt, __nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                     const __nv_bfloat16* w, int64_t M, int64_t K, int64_t N, cudaStream_t stream, float alpha = 1.0f);

}  // namespace nemokit::rt::cuda
