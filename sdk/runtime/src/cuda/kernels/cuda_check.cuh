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

// A kernel launch, NEMOKIT_LAUNCH(grid, block, smem, stream, kernel)(args...): under nvcc exactly
// kernel<<<grid, block, smem, stream>>>(args...); compiled as plain C++ (tests/gpu/emulation, the
// kernels run on the CPU) the emulator's launcher, since <<<>>> is no C++. The kernel is the last
// argument, so a template kernel's commas need no parentheses.
#ifdef __CUDACC__
#define NEMOKIT_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#else
#define NEMOKIT_LAUNCH(grid, block, smem, stream, ...) ::cuda_emu::launch(grid, block, smem, stream, __VA_ARGS__)
#endif

// A kernel's dynamic shared memory, NEMOKIT_DYNAMIC_SHARED(type, name): `extern __shared__ type
// name[]` under nvcc (type may carry __align__), a pointer to the emulated block's buffer otherwise.
#ifdef __CUDACC__
#define NEMOKIT_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#else
#define NEMOKIT_DYNAMIC_SHARED(type, name) type* name = ::cuda_emu::dynamic_shared()
#endif

// After a launch: a bad configuration shows at once (cudaGetLastError); a fault inside
// the kernel shows at the next synchronizing call, which is checked too.
#define NEMOKIT_CUDA_LAUNCHED(kernel_name)                                                           \
  do {                                                                                               \
    cudaError_t nemokit_e_ = cudaGetLastError();                                                     \
    if (nemokit_e_ != cudaSuccess)                                                                   \
      ::nemokit::rt::cuda::throw_cuda_error("launch of " kernel_name, cudaGetErrorString(nemokit_e_), \
                                            __FILE__, __LINE__);                                     \
  } while (0)
