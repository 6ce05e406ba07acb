// The emulator's engine: the scheduler of a block's threads, the runtime API over host memory,
// and the cuBLAS/cuBLASLt products (see the headers beside this file and README.md).
//
// A block's threads are fibers on the launching thread: each runs until it reaches __syncthreads,
// a warp collective or its end, then the scheduler resumes the next runnable one, in thread order.
// That is deterministic, needs no locks, and costs a register switch per wait (x86-64: the
// hand-written switch below).
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cublasLt.h"
#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_runtime.h"

// x86-64: a hand-written switch of stacks; elsewhere (or built with -DCUDA_EMU_UCONTEXT) ucontext.
#if defined(__x86_64__) && !defined(CUDA_EMU_UCONTEXT)
#define CUDA_EMU_ASM_SWITCH 1
#else
#define CUDA_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

// The section every static __shared__ variable lives in (cuda_runtime.h); the linker defines its
// bounds. Weak: a program whose kernels have none still links.
extern "C" unsigned char __start_cuda_emu_shared[] __attribute__((weak));
extern "C" unsigned char __stop_cuda_emu_shared[] __attribute__((weak));

namespace cuda_emu {
namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 << 10;   // per fiber; reserved, touched only as used
constexpr size_t kDefaultSmem = 48 << 10;   // dynamic shared memory without opting in
constexpr size_t kOptinSmem = 232448;       // sm_90's per-block opt-in limit
constexpr int kSms = 132;                   // an H100/H200 SXM

enum State { kReady, kAtBarrier, kAtWarp, kDone };

struct Fiber {
#if CUDA_EMU_ASM_SWITCH
  void* sp;
#else
  ucontext_t ctx;
#endif
  State state;
};

struct Warp {
  uint32_t arrived = 0;
  uint32_t gen = 0;           // completed collectives: selects the slot row, so a lane running
  uint64_t slot[2][32] = {};  // ahead to its next collective never overwrites values still read
};

struct Scheduler {
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreads);
  std::vector<Warp> warps;
  unsigned char* stacks = nullptr;
  unsigned char* smem = nullptr;  // the block's dynamic shared memory
  int threads = 0, alive = 0, at_barrier = 0, current = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
#if CUDA_EMU_ASM_SWITCH
  void* main_sp = nullptr;
#else
  ucontext_t main_ctx;
#endif
  const void* main_stack = nullptr;  // the launching thread's stack, for AddressSanitizer
  size_t main_stack_bytes = 0;
};
Scheduler S;

std::mutex launch_mutex;   // one launch at a time: the fibers share the scheduler and the section
cudaError_t last_error = cudaSuccess;
std::map<const void*, int> smem_optin;  // kernel -> cudaFuncAttributeMaxDynamicSharedMemorySize

}  // namespace
}  // namespace cuda_emu

#if CUDA_EMU_ASM_SWITCH
// cuda_emu_switch(save, to): push the callee-saved registers, save the stack pointer in *save,
// take `to` as the stack pointer, pop that fiber's registers and return into it. (MXCSR and the
// x87 control word are callee-saved too, but nothing here changes them.)
extern "C" void cuda_emu_switch(void** save, void* to);
asm(R"(
  .text
  .p2align 4
  .globl cuda_emu_switch
  .hidden cuda_emu_switch
  .type cuda_emu_switch,@function
cuda_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_emu_switch, .-cuda_emu_switch
)");
#endif

namespace cuda_emu {
namespace {

// AddressSanitizer (the sanitized build, scripts/test-sanitized.sh) must be told of every switch
// of stacks: `leaving` before (null fake stack: the old one is finished), `arrived` after.
#if defined(__SANITIZE_ADDRESS__)
void asan_leaving(void** fake, const void* stack, size_t bytes) { __sanitizer_start_switch_fiber(fake, stack, bytes); }
void asan_arrived(void* fake, const void** old_stack, size_t* old_bytes) {
  __sanitizer_finish_switch_fiber(fake, old_stack, old_bytes);
}
#else
void asan_leaving(void**, const void*, size_t) {}
void asan_arrived(void*, const void**, size_t*) {}
#endif

void to_scheduler(bool finished) {
  void* fake = nullptr;
  asan_leaving(finished ? nullptr : &fake, S.main_stack, S.main_stack_bytes);
#if CUDA_EMU_ASM_SWITCH
  cuda_emu_switch(&S.fibers[S.current].sp, S.main_sp);
#else
  swapcontext(&S.fibers[S.current].ctx, &S.main_ctx);
#endif
  asan_arrived(fake, &S.main_stack, &S.main_stack_bytes);
}

void release_barrier() {
  for (int i = 0; i < S.threads; ++i)
    if (S.fibers[i].state == kAtBarrier) S.fibers[i].state = kReady;
  S.at_barrier = 0;
}

void fiber_main() {
  asan_arrived(nullptr, &S.main_stack, &S.main_stack_bytes);
  S.body(S.ctx);
  S.fibers[S.current].state = kDone;
  // Exited threads no longer count at __syncthreads.
  if (--S.alive > 0 && S.at_barrier == S.alive) release_barrier();
  to_scheduler(true);  // never resumed
  std::abort();
}

void start(int i) {
  unsigned char* top = S.stacks + (size_t(i) + 1) * kStackBytes;
#if CUDA_EMU_ASM_SWITCH
  // The frame cuda_emu_switch pops: six registers, then fiber_main as the return address, so
  // fiber_main starts with the stack aligned as after a call.
  void** sp = reinterpret_cast<void**>(top) - 8;
  for (int r = 0; r < 6; ++r) sp[r] = nullptr;
  sp[6] = reinterpret_cast<void*>(&fiber_main);
  sp[7] = nullptr;
  S.fibers[i].sp = sp;
#else
  Fiber& f = S.fibers[i];
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = top - kStackBytes;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, &fiber_main, 0);
#endif
  S.fibers[i].state = kReady;
}

void resume(int i) {
  S.current = i;
  const unsigned bx = block_dim.x, by = block_dim.y;
  thread_idx = {unsigned(i) % bx, unsigned(i) / bx % by, unsigned(i) / (bx * by)};
  void* fake = nullptr;
  asan_leaving(&fake, S.stacks + size_t(i) * kStackBytes, kStackBytes);
#if CUDA_EMU_ASM_SWITCH
  cuda_emu_switch(&S.main_sp, S.fibers[i].sp);
#else
  swapcontext(&S.main_ctx, &S.fibers[i].ctx);
#endif
  asan_arrived(fake, nullptr, nullptr);
}

// Runs one block to its end; false (with a report on stderr) when its threads deadlock. Threads
// run in increasing order in even blocks and in decreasing order in odd ones, so a missing
// barrier shows whichever side of it the reading thread is on.
bool run_block(bool reverse) {
  for (int i = 0; i < S.threads; ++i) start(i);
  S.alive = S.threads;
  S.at_barrier = 0;
  for (Warp& w : S.warps) w = Warp{};
  while (S.alive > 0) {
    bool ran = false;
    for (int j = 0; j < S.threads; ++j) {
      const int i = reverse ? S.threads - 1 - j : j;
      if (S.fibers[i].state == kReady) {
        resume(i);
        ran = true;
      }
    }
    if (!ran) {
      int at_barrier = 0, at_warp = 0, first_warp = -1;
      for (int i = 0; i < S.threads; ++i) {
        if (S.fibers[i].state == kAtBarrier) ++at_barrier;
        if (S.fibers[i].state == kAtWarp && at_warp++ == 0) first_warp = i;
      }
      std::fprintf(stderr,
                   "cuda emulator: block (%u,%u,%u) deadlocks: %d threads wait at __syncthreads, %d at a warp "
                   "collective (first: thread %d), %d exited (a barrier some threads never reach, or a mask "
                   "naming an exited lane?)\n",
                   block_idx.x, block_idx.y, block_idx.z, at_barrier, at_warp, first_warp, S.threads - S.alive);
      return false;
    }
  }
  return true;
}

}  // namespace

unsigned lane() { return unsigned(S.current) % 32; }

void trap(const char* what) {
  std::fprintf(stderr, "cuda emulator: trap in block (%u,%u,%u) thread (%u,%u,%u): %s\n", block_idx.x, block_idx.y,
               block_idx.z, thread_idx.x, thread_idx.y, thread_idx.z, what);
  std::abort();
}

void syncthreads() {
  S.fibers[S.current].state = kAtBarrier;
  if (++S.at_barrier == S.alive) release_barrier();
  to_scheduler(false);
}

void syncwarp(unsigned mask) {
  const int w = S.current / 32;
  const uint32_t me = 1u << (S.current % 32);
  if (!(mask & me)) trap("warp collective: the calling lane is not in the mask");
  Warp& W = S.warps[w];
  W.arrived |= me;
  S.fibers[S.current].state = kAtWarp;
  if ((W.arrived & mask) == mask) {  // the last lane of the mask is here: all go on
    for (int l = 0; l < 32; ++l)
      if (mask >> l & 1) S.fibers[w * 32 + l].state = kReady;
    W.arrived &= ~mask;
    ++W.gen;
  }
  to_scheduler(false);
}

const uint64_t* warp_exchange(unsigned mask, uint64_t mine) {
  Warp& W = S.warps[S.current / 32];
  const uint32_t row = W.gen & 1;
  W.slot[row][S.current % 32] = mine;
  syncwarp(mask);
  return W.slot[row];
}

DynamicShared dynamic_shared() { return {S.smem}; }

void run(const Config& c, void (*body)(void*), void* ctx) {
  std::lock_guard lock(launch_mutex);
  const uint64_t threads = uint64_t(c.block.x) * c.block.y * c.block.z;
  if (threads == 0 || threads > kMaxThreads || c.block.z > 64 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 ||
      c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  size_t allowed = kDefaultSmem;
  if (auto it = smem_optin.find(c.kernel); it != smem_optin.end()) allowed = std::max<size_t>(allowed, it->second);
  if (c.smem > allowed) {
    last_error = cudaErrorInvalidValue;  // what the device says: too much dynamic shared memory
    return;
  }
  if (!S.stacks) {
    void* p = mmap(nullptr, kMaxThreads * kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("cuda emulator: cannot reserve fiber stacks");
    S.stacks = static_cast<unsigned char*>(p);
    S.smem = static_cast<unsigned char*>(std::aligned_alloc(1024, kOptinSmem));
  }
  S.threads = int(threads);
  S.warps.assign((threads + 31) / 32, Warp{});
  S.body = body;
  S.ctx = ctx;
  block_dim = c.block;
  grid_dim = c.grid;
  for (unsigned z = 0; z < c.grid.z; ++z)
    for (unsigned y = 0; y < c.grid.y; ++y)
      for (unsigned x = 0; x < c.grid.x; ++x) {
        // Shared memory starts as NaN bytes in every block: a read before a write shows.
        if (__start_cuda_emu_shared)
          std::memset(__start_cuda_emu_shared, 0xFF, size_t(__stop_cuda_emu_shared - __start_cuda_emu_shared));
        std::memset(S.smem, 0xFF, c.smem);
        block_idx = {x, y, z};
        if (!run_block((x + y + z) & 1)) {
          last_error = cudaErrorLaunchFailure;
          return;
        }
      }
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || size_t(value) > kOptinSmem)
    return cudaErrorInvalidValue;
  std::lock_guard lock(launch_mutex);
  smem_optin[kernel] = value;
  return cudaSuccess;
}

// Blocks per SM by threads and shared memory alone (2048 threads, 228 KiB, 32 blocks per SM).
cudaError_t occupancy(int* blocks, const void*, int threads, size_t smem) {
  if (threads <= 0 || threads > kMaxThreads) return cudaErrorInvalidValue;
  int n = std::min(32, 2048 / threads);
  if (smem) n = std::min<int>(n, int(233472 / (smem + 1024)));
  *blocks = n;
  return cudaSuccess;
}

}  // namespace cuda_emu

// ---- runtime API ---------------------------------------------------------------------------
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulator: deadlock, see stderr)";
  }
  return "unknown error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = cuda_emu::last_error;
  cuda_emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return cuda_emu::last_error; }
cudaError_t cudaGetDeviceCount(int* n) { return *n = 1, cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = cuda_emu::kSms; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(cuda_emu::kOptinSmem); return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}
// Launches finish before they return, so there is never anything to wait for.
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t* s) { return *s = nullptr, cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
namespace cuda_emu {
// The bytes each live allocation asked for, for cudaMemGetInfo.
struct Allocations {
  std::mutex mutex;
  std::map<void*, size_t> sizes;
  size_t in_use = 0;
};
Allocations& allocations() {
  static Allocations a;
  return a;
}
}  // namespace cuda_emu

// 256-byte aligned, as cudaMalloc guarantees.
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  if (!*p) return cudaErrorMemoryAllocation;
  auto& a = cuda_emu::allocations();
  std::lock_guard lock(a.mutex);
  a.sizes[*p] = bytes;
  a.in_use += bytes;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (p) {
    auto& a = cuda_emu::allocations();
    std::lock_guard lock(a.mutex);
    if (auto it = a.sizes.find(p); it != a.sizes.end()) a.in_use -= it->second, a.sizes.erase(it);
  }
  return std::free(p), cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  constexpr size_t kTotal = size_t(80) << 30;
  auto& a = cuda_emu::allocations();
  std::lock_guard lock(a.mutex);
  *total_bytes = kTotal;
  *free_bytes = kTotal - a.in_use;
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }

// ---- cuBLAS and cuBLASLt -------------------------------------------------------------------
struct cublasContext {};
struct cublasLtContext {};
struct cublasLtMatmulDescOpaque {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
};
struct cublasLtMatrixLayoutOpaque {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct cublasLtMatmulPreferenceOpaque {};

namespace cuda_emu {
namespace {

bool supported(cudaDataType_t t) { return t == CUDA_R_16BF || t == CUDA_R_32F; }
float load(const void* p, cudaDataType_t t, int64_t i) {
  return t == CUDA_R_32F ? static_cast<const float*>(p)[i] : float(static_cast<const __nv_bfloat16*>(p)[i]);
}

// D = alpha op(A) op(B) + beta C (+ bias[i]), column-major; C is not read when beta is 0. Each
// element is one fp32 dot product in k order, rounded once to D's type.
cublasStatus_t gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void* A, cudaDataType_t at,
                    int64_t lda, const void* B, cudaDataType_t bt, int64_t ldb, float beta, const void* C,
                    cudaDataType_t ct, int64_t ldc, void* D, cudaDataType_t dt, int64_t ldd, const void* bias) {
  if (m < 0 || n < 0 || k < 0 || lda < std::max<int64_t>(1, ta ? k : m) || ldb < std::max<int64_t>(1, tb ? n : k) ||
      ldc < std::max<int64_t>(1, m) || ldd < std::max<int64_t>(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!supported(at) || !supported(bt) || !supported(ct) || !supported(dt)) return CUBLAS_STATUS_NOT_SUPPORTED;
  // op(A) by rows and op(B) by columns as contiguous fp32, so the inner loop is a plain dot product.
  std::vector<float> a(size_t(m * k)), b(size_t(n * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t l = 0; l < k; ++l) a[i * k + l] = load(A, at, ta ? l + i * lda : i + l * lda);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t l = 0; l < k; ++l) b[j * k + l] = load(B, bt, tb ? j + l * ldb : l + j * ldb);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int64_t l = 0; l < k; ++l) s += a[i * k + l] * b[j * k + l];
      float v = alpha * s;
      if (beta != 0.0f) v += beta * load(C, ct, i + j * ldc);
      if (bias) v += load(bias, dt, i);
      if (dt == CUDA_R_32F) static_cast<float*>(D)[i + j * ldd] = v;
      else static_cast<__nv_bfloat16*>(D)[i + j * ldd] = __nv_bfloat16(v);
    }
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace
}  // namespace cuda_emu

const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "unknown cuBLAS status";
}
cublasStatus_t cublasCreate(cublasHandle_t* h) { return *h = new cublasContext, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { return delete h, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t) {
  return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
// Only host scalars are emulated.
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType_t a_type, int lda, const void* B,
                            cudaDataType_t b_type, int ldb, const void* beta, void* C, cudaDataType_t c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (compute != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  return cuda_emu::gemm(ta == CUBLAS_OP_T, tb == CUBLAS_OP_T, m, n, k, *static_cast<const float*>(alpha), A, a_type,
                        lda, B, b_type, ldb, *static_cast<const float*>(beta), C, c_type, ldc, C, c_type, ldc, nullptr);
}
// Group g holds group_size[g] problems of its sizes and scalars; the pointer arrays run over all
// problems of all groups in order.
cublasStatus_t cublasGemmGroupedBatchedEx(cublasHandle_t h, const cublasOperation_t ta[], const cublasOperation_t tb[],
                                          const int m[], const int n[], const int k[], const void* alpha,
                                          const void* const A[], cudaDataType_t a_type, const int lda[],
                                          const void* const B[], cudaDataType_t b_type, const int ldb[],
                                          const void* beta, void* const C[], cudaDataType_t c_type, const int ldc[],
                                          int group_count, const int group_size[], cublasComputeType_t compute) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (compute != CUBLAS_COMPUTE_32F || group_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float* alphas = static_cast<const float*>(alpha);
  const float* betas = static_cast<const float*>(beta);
  int p = 0;
  for (int g = 0; g < group_count; ++g)
    for (int i = 0; i < group_size[g]; ++i, ++p) {
      const cublasStatus_t s =
          cuda_emu::gemm(ta[g] == CUBLAS_OP_T, tb[g] == CUBLAS_OP_T, m[g], n[g], k[g], alphas[g], A[p], a_type, lda[g],
                         B[p], b_type, ldb[g], betas[g], C[p], c_type, ldc[g], C[p], c_type, ldc[g], nullptr);
      if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) { return *h = new cublasLtContext, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { return delete h, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (compute != CUBLAS_COMPUTE_32F || scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  return *d = new cublasLtMatmulDescOpaque, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { return delete d, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t bytes) {
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
      if (bytes != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
      int32_t op;
      std::memcpy(&op, buf, sizeof op);
      (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = cublasOperation_t(op);
      return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      if (bytes != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&d->epilogue, buf, bytes);
      return d->epilogue == CUBLASLT_EPILOGUE_DEFAULT || d->epilogue == CUBLASLT_EPILOGUE_BIAS
                 ? CUBLAS_STATUS_SUCCESS
                 : CUBLAS_STATUS_NOT_SUPPORTED;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      if (bytes != sizeof(void*)) return CUBLAS_STATUS_INVALID_VALUE;
      std::memcpy(&d->bias, buf, bytes);
      return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_NOT_SUPPORTED;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  if (ld < int64_t(std::max<uint64_t>(rows, 1))) return CUBLAS_STATUS_INVALID_VALUE;  // column-major: ld >= rows
  return *l = new cublasLtMatrixLayoutOpaque{type, rows, cols, ld}, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { return delete l, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  return *p = new cublasLtMatmulPreferenceOpaque, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { return delete p, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t,
                                                    const void*, size_t) {
  return CUBLAS_STATUS_SUCCESS;
}

namespace {
// The sizes of the product the layouts describe, or false when they disagree with each other.
bool shape(const cublasLtMatmulDescOpaque* desc, const cublasLtMatrixLayoutOpaque* a,
           const cublasLtMatrixLayoutOpaque* b, const cublasLtMatrixLayoutOpaque* c,
           const cublasLtMatrixLayoutOpaque* d, int64_t* m, int64_t* n, int64_t* k) {
  const bool ta = desc->ta == CUBLAS_OP_T, tb = desc->tb == CUBLAS_OP_T;
  *m = int64_t(d->rows), *n = int64_t(d->cols), *k = int64_t(ta ? a->rows : a->cols);
  return uint64_t(*m) == (ta ? a->cols : a->rows) && uint64_t(*k) == (tb ? b->cols : b->rows) &&
         uint64_t(*n) == (tb ? b->rows : b->cols) && c->rows == d->rows && c->cols == d->cols && c->type == d->type;
}
}  // namespace

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int* found) {
  int64_t m, n, k;
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (requested < 1 || !shape(desc, a, b, c, d, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
  results[0] = {};
  results[0].state = CUBLAS_STATUS_SUCCESS;
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t*, void*, size_t, cudaStream_t) {
  int64_t m, n, k;
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!shape(desc, a, b, c, d, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (desc->epilogue == CUBLASLT_EPILOGUE_BIAS && !desc->bias) return CUBLAS_STATUS_INVALID_VALUE;
  return cuda_emu::gemm(desc->ta == CUBLAS_OP_T, desc->tb == CUBLAS_OP_T, m, n, k, *static_cast<const float*>(alpha),
                        A, a->type, a->ld, B, b->type, b->ld, *static_cast<const float*>(beta), C, c->type, c->ld, D,
                        d->type, d->ld, desc->epilogue == CUBLASLT_EPILOGUE_BIAS ? desc->bias : nullptr);
}
