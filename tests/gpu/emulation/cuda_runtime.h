// Host emulation of the CUDA runtime API and of the device builtins the kernels of
// sdk/runtime/src/cuda/kernels/ use, so their .cu files compile as ordinary C++20 and run on the
// CPU (README.md says what this can and cannot show). Device memory is host memory; a launch runs
// at once, blocks one after another, the threads of a block as fibers on the calling thread that
// switch at __syncthreads and at warp collectives (emulation.cpp).
#pragma once
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// ---- vector types --------------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ---- runtime API ---------------------------------------------------------------------------
typedef struct CUstream_st* cudaStream_t;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice,
  cudaMemcpyDefault
};
enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
typedef cudaDataType_t cudaDataType;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct cudaFuncAttributes {
  size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
  int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion, cacheModeCA, maxDynamicSharedSizeBytes;
};

const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaMalloc(void** p, size_t bytes);
// An 80 GiB device whose free memory is that less what cudaMalloc holds (the bytes asked for).
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
template <class T>
cudaError_t cudaMallocAsync(T** p, size_t bytes, cudaStream_t s) {
  return cudaMallocAsync(reinterpret_cast<void**>(p), bytes, s);
}

namespace cuda_emu {
cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value);
cudaError_t occupancy(int* blocks, const void* kernel, int threads, size_t smem);
}  // namespace cuda_emu
template <class K>
cudaError_t cudaFuncSetAttribute(K* kernel, cudaFuncAttribute attr, int value) {
  return cuda_emu::func_set_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}
// The emulator cannot know a kernel's static shared memory or registers: all zero.
template <class K>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, K*) {
  *a = {};
  a->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
template <class K>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, K* kernel, int threads, size_t smem) {
  return cuda_emu::occupancy(blocks, reinterpret_cast<const void*>(kernel), threads, smem);
}

// ---- device code as host code --------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one variable per program, which is one per block since blocks run one at
// a time. They all live in one section, so each block starts with the whole section set to 0xFF
// (NaN in fp32 and bf16): a read before any write shows. Dynamic shared memory is
// NEMOKIT_DYNAMIC_SHARED (cuda_check.cuh): `extern __shared__` has no host equivalent.
#define __shared__ static __attribute__((section("cuda_emu_shared")))

namespace cuda_emu {
inline uint3 thread_idx, block_idx;  // of the running fiber: set by the scheduler at each switch
inline dim3 block_dim, grid_dim;
constexpr unsigned kFullMask = 0xffffffffu;

void syncthreads();
void syncwarp(unsigned mask);
// A warp collective: this lane's 8 bytes in, after every lane of `mask` has put its own; returns
// the warp's 32 slots (lanes outside the mask: stale).
const uint64_t* warp_exchange(unsigned mask, uint64_t mine);
unsigned lane();
[[noreturn]] void trap(const char* what);

template <class T>
T shuffle_from(unsigned mask, T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  const uint64_t* slots = warp_exchange(mask, bits);
  T out;
  std::memcpy(&out, &slots[src], sizeof out);
  return out;
}

// The dynamic shared memory of the running block, as whatever pointer type the kernel declares.
struct DynamicShared {
  void* p;
  template <class T>
  operator T*() const { return static_cast<T*>(p); }
};
DynamicShared dynamic_shared();

// A launch: the kernel run on every thread of every block, now, on this thread.
struct Config {
  dim3 grid, block;
  size_t smem;
  const void* kernel;
};
void run(const Config& cfg, void (*body)(void*), void* ctx);

template <class K>
struct Launch {
  Config cfg;
  K* kernel;
  template <class... A>
  void operator()(const A&... args) const {
    auto body = [&] { kernel(args...); };  // each thread gets its own copies of the arguments
    run(cfg, [](void* b) { (*static_cast<decltype(body)*>(b))(); }, &body);
  }
};
template <class K>
Launch<K> launch(dim3 grid, dim3 block, size_t smem, cudaStream_t, K* kernel) {
  return {{grid, block, smem, reinterpret_cast<const void*>(kernel)}, kernel};
}
}  // namespace cuda_emu

#define threadIdx (::cuda_emu::thread_idx)
#define blockIdx (::cuda_emu::block_idx)
#define blockDim (::cuda_emu::block_dim)
#define gridDim (::cuda_emu::grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads() { cuda_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = cuda_emu::kFullMask) { cuda_emu::syncwarp(mask); }

// Shuffles as the CUDA C++ Programming Guide defines them, `width` lanes to a segment.
template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return cuda_emu::shuffle_from(mask, v, int(cuda_emu::lane()) / width * width + src % width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int l = int(cuda_emu::lane()), src = l ^ lane_mask;
  return cuda_emu::shuffle_from(mask, v, src / width == l / width ? src : l);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int l = int(cuda_emu::lane());
  return cuda_emu::shuffle_from(mask, v, l % width + int(delta) < width ? l + int(delta) : l);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int l = int(cuda_emu::lane());
  return cuda_emu::shuffle_from(mask, v, l % width >= int(delta) ? l - int(delta) : l);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  const uint64_t* s = cuda_emu::warp_exchange(mask, pred != 0);
  unsigned out = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1) && s[l]) out |= 1u << l;
  return out;
}
template <class T>
unsigned __match_any_sync(unsigned mask, T v) {
  static_assert(sizeof(T) <= 8);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  const uint64_t* s = cuda_emu::warp_exchange(mask, bits);
  unsigned out = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1) && s[l] == bits) out |= 1u << l;
  return out;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }

// Atomics: blocks and threads run one at a time, so a plain read-modify-write is atomic.
template <class T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
inline float2 atomicAdd(float2* p, float2 v) {  // sm_90's vector forms
  const float2 old = *p;
  *p = {old.x + v.x, old.y + v.y};
  return old;
}
inline float4 atomicAdd(float4* p, float4 v) {
  if (reinterpret_cast<uintptr_t>(p) % 16) cuda_emu::trap("atomicAdd(float4*): address not 16-byte aligned");
  const float4 old = *p;
  *p = {old.x + v.x, old.y + v.y, old.z + v.z, old.w + v.w};
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}

// Math: the _rn intrinsics are IEEE round-to-nearest, which host float arithmetic is (the build
// turns off FMA contraction); the fast approximations (__expf...) become the accurate functions.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __expf(float a) { return std::exp(a); }
inline float __logf(float a) { return std::log(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; }
inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float f) { int x; std::memcpy(&x, &f, 4); return x; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned x; std::memcpy(&x, &f, 4); return x; }
template <class T>
T __ldg(const T* p) { return *p; }
// CUDA's global min/max overloads (device code calls them unqualified).
template <class T>
constexpr T min(T a, T b) { return b < a ? b : a; }
template <class T>
constexpr T max(T a, T b) { return a < b ? b : a; }
