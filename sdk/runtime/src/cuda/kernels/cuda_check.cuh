// Every CUDA, cuBLAS and cuBLASLt call of the kernels goes through one of these checks, and every
// launch is followed by NEMOKIT_CUDA_LAUNCHED: a failure throws std::runtime_error naming the
// call (or kernel), the file and line, and the library's own words, never a silent wrong result.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace nemokit::rt::cuda {

[[noreturn]] inline void throw_cuda_error(const char* what, const char* detail, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " + detail);
}

}  // namespace nemokit::rt::cuda

#define NEMOKIT_CUDA_CHECK(call)                                                                     \
  do {                                                                                               \
    cudaError_t nemokit_e_ = (call);                                                                 \
    if (nemokit_e_ != cudaSuccess)                                                                   \
      ::nemokit::rt::cuda::throw_cuda_error(#call, cudaGetErrorString(nemokit_e_), __FILE__, __LINE__); \
  } while (0)

#define NEMOKIT_CUBLAS_CHECK(call)                                                                     \
  do {                                                                                                 \
    cublasStatus_t nemokit_s_ = (call);                                                                \
    if (nemokit_s_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::nemokit::rt::cuda::throw_cuda_error(#call, cublasGetStatusString(nemokit_s_), __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: a bad configuration shows at once (cudaGetLastError); a fault inside
// the kernel shows at the next synchronizing call, which is checked too.
#define NEMOKIT_CUDA_LAUNCHED(kernel_name)                                                           \
  do {                                                                                               \
    cudaError_t nemokit_e_ = cudaGetLastError();                                                     \
    if (nemokit_e_ != cudaSuccess)                                                                   \
      ::nemokit::rt::cuda::throw_cuda_error("launch of " kernel_name, cudaGetErrorString(nemokit_e_), \
                                            __FILE__, __LINE__);                                     \
  } while (0)
