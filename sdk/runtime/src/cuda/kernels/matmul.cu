#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "cuda_check.cuh"
#include "matmul.cuh"

// Row-major on our side, column-major in cuBLAS: a row-major [R, C] array with row stride ld IS the
// column-major [C, R] matrix with leading dimension ld, its transpose. So each product is computed as
// its own transpose, operands swapped, and no data is ever transposed:
//   y   = x w^T   (row-major)  <=>  y^T  = w x^T    : A = w (op T), B = x  (op N), m=N n=M k=K
//   dx += dy w                 <=>  dx^T += w^T dy^T : A = w (op N), B = dy (op N), m=K n=M k=N
//   dw += dy^T x               <=>  dw^T += x^T dy   : A = x (op N), B = dy (op T), m=K n=N k=M
// The forward is cuBLAS's "TN" case, the layout its fastest kernels are tuned for.

namespace nemokit::rt::cuda {
namespace lt_detail {

// One product D[m,n] (= beta C, beta 0 or 1) + alpha op(A)[m,k] op(B)[k,n], column-major, as cuBLAS
// sees it.
struct Gemm {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const __nv_bfloat16* a = nullptr;
  int64_t lda = 0;
  const __nv_bfloat16* b = nullptr;
  int64_t ldb = 0;
  void* d = nullptr;
  cudaDataType_t d_type = CUDA_R_16BF;
  int64_t ldd = 0;
  float alpha = 1.0f, beta = 0.0f;
  const void* bias = nullptr;  // [m] of d_type, added in the epilogue
};

// (ta, tb, m, n, k, lda, ldb, ldd, d type, bias?, alignment of A, B, D, bias). Alignments are part of
// the key: the heuristic assumes 256-byte aligned pointers unless told otherwise, and an algorithm
// chosen for aligned buffers may not run on a row-offset pointer (a chunk of the loss, say).
using PlanKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, bool, uint32_t,
                           uint32_t, uint32_t, uint32_t>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;  // C shares D's layout (and buffer)
  cublasLtMatmulAlgo_t algo{};
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

struct Preference {  // destroyed on every path out of planning
  cublasLtMatmulPreference_t p = nullptr;
  ~Preference() {
    if (p) cublasLtMatmulPreferenceDestroy(p);
  }
};

// The largest power of two up to 256 dividing the address (null: 256, nothing to align).
uint32_t alignment(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && addr % al != 0) al /= 2;
  return al;
}

std::string describe(const Gemm& g) {
  return std::string("column-major ") + (g.ta ? "T" : "N") + (g.tb ? "T" : "N") + " m=" + std::to_string(g.m) +
         " n=" + std::to_string(g.n) + " k=" + std::to_string(g.k) + " lda=" + std::to_string(g.lda) +
         " ldb=" + std::to_string(g.ldb) + " ldd=" + std::to_string(g.ldd) +
         (g.d_type == CUDA_R_32F ? " D fp32" : " D bf16") + (g.bias ? " +bias" : "") +
         " alignments A/B/D " + std::to_string(alignment(g.a)) + "/" + std::to_string(alignment(g.b)) + "/" +
         std::to_string(alignment(g.d));
}

}  // namespace lt_detail

struct BlasLt::Impl {
  int device = 0;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::mutex mutex;
  std::map<lt_detail::PlanKey, std::unique_ptr<lt_detail::Plan>> plans;  // destroyed before the handle

  ~Impl() {
    plans.clear();
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }
};

BlasLt::BlasLt(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  NEMOKIT_CUDA_CHECK(cudaGetDevice(&impl_->device));
  NEMOKIT_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  if (workspace_bytes) NEMOKIT_CUDA_CHECK(cudaMalloc(&impl_->workspace, workspace_bytes));  // 256-byte aligned
  impl_->workspace_bytes = workspace_bytes;
}

BlasLt::~BlasLt() = default;

size_t BlasLt::plans() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->plans.size();
}

namespace lt_detail {
namespace {

Plan& plan_for(BlasLt::Impl& im, const Gemm& g) {
  const PlanKey key{g.ta,         g.tb,          g.m,          g.n,
                    g.k,          g.lda,         g.ldb,        g.ldd,
                    int(g.d_type), g.bias != nullptr, alignment(g.a), alignment(g.b),
                    alignment(g.d), alignment(g.bias)};
  if (auto it = im.plans.find(key); it != im.plans.end()) return *it->second;

  auto p = std::make_unique<Plan>();
  NEMOKIT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const int32_t opa = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  NEMOKIT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  NEMOKIT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  if (g.bias) {
    // The bias has D's type (bf16 here). The heuristic reads the pointer's value for its alignment.
    const uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    NEMOKIT_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    NEMOKIT_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias));
  }
  // Layouts describe the stored matrices: op(A) is m x k, so A itself is k x m when transposed.
  NEMOKIT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, uint64_t(g.ta ? g.k : g.m),
                                                  uint64_t(g.ta ? g.m : g.k), g.lda));
  NEMOKIT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, uint64_t(g.tb ? g.n : g.k),
                                                  uint64_t(g.tb ? g.k : g.n), g.ldb));
  NEMOKIT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, g.d_type, uint64_t(g.m), uint64_t(g.n), g.ldd));

  Preference pref;
  NEMOKIT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.p));
  const uint64_t ws = im.workspace_bytes;
  NEMOKIT_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t al_a = alignment(g.a), al_b = alignment(g.b), al_d = alignment(g.d);
  NEMOKIT_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
  NEMOKIT_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
  NEMOKIT_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
  NEMOKIT_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(im.handle, p->desc, p->a, p->b, p->d, p->d, pref.p, 1, &result, &found);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0 || result.state != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error("cuBLASLt has no algorithm for the product " + describe(g) + " (" +
                             (s != CUBLAS_STATUS_SUCCESS ? cublasGetStatusString(s) : "no heuristic result") + ")");
  p->algo = result.algo;
  return *im.plans.emplace(key, std::move(p)).first->second;
}

void run(BlasLt& lt, const Gemm& g, cudaStream_t stream) {
  BlasLt::Impl& im = lt.impl();
  int device = 0;
  NEMOKIT_CUDA_CHECK(cudaGetDevice(&device));
  if (device != im.device)
    throw std::runtime_error("BlasLt made on device " + std::to_string(im.device) + " used on device " +
                             std::to_string(device));
  std::lock_guard lock(im.mutex);
  Plan& p = plan_for(im, g);
  // The descriptor is shared by every call of this shape; the bias pointer is the call's own.
  if (g.bias)
    NEMOKIT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                                        sizeof g.bias));
  // C = D: with beta = 1 the product accumulates into D; with beta = 0 cuBLASLt does not read C.
  NEMOKIT_CUBLAS_CHECK(cublasLtMatmul(im.handle, p.desc, &g.alpha, g.a, p.a, g.b, p.b, &g.beta, g.d, p.d, g.d, p.d,
                                      &p.algo, im.workspace, im.workspace_bytes, stream));
}

void check_sizes(const char* what, int64_t M, int64_t K, int64_t N) {
  if (M < 0 || K < 0 || N < 0)
    throw std::invalid_argument(std::string(what) + ": negative size M=" + std::to_string(M) +
                                " K=" + std::to_string(K) + " N=" + std::to_string(N));
}

void forward(BlasLt& lt, void* y, cudaDataType_t y_type, const __nv_bfloat16* x, const __nv_bfloat16* w,
             const __nv_bfloat16* bias, int64_t M, int64_t K, int64_t N, cudaStream_t stream, float alpha = 1.0f,
             bool accumulate = false) {
  check_sizes("linear_forward", M, K, N);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: y = 0, as on the CPU (cuBLASLt does not take k = 0)
    if (bias) throw std::invalid_argument("linear_bias_forward: K = 0");
    if (accumulate) return;
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(M) * size_t(N) * (y_type == CUDA_R_32F ? 4 : 2), stream));
    return;
  }
  Gemm g;
  g.ta = true, g.tb = false;
  g.m = N, g.n = M, g.k = K;
  g.a = w, g.lda = K;
  g.b = x, g.ldb = K;
  g.d = y, g.d_type = y_type, g.ldd = N;
  g.alpha = alpha;
  g.beta = accumulate ? 1.0f : 0.0f;
  g.bias = bias;
  run(lt, g, stream);
}

}  // namespace
}  // namespace lt_detail

void linear_forward(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M,
                    int64_t K, int64_t N, cudaStream_t stream) {
  lt_detail::forward(lt, y, CUDA_R_16BF, x, w, nullptr, M, K, N, stream);
}

void linear_forward(BlasLt& lt, float* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M, int64_t K,
                    int64_t N, cudaStream_t stream) {
  lt_detail::forward(lt, y, CUDA_R_32F, x, w, nullptr, M, K, N, stream);
}

void linear_forward_scaled(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t M,
                           int64_t K, int64_t N, float alpha, bool accumulate, cudaStream_t stream) {
  lt_detail::forward(lt, y, CUDA_R_16BF, x, w, nullptr, M, K, N, stream, alpha, accumulate);
}

void linear_bias_forward(BlasLt& lt, __nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* w,
                         const __nv_bfloat16* bias, int64_t M, int64_t K, int64_t N, cudaStream_t stream) {
  if (!bias) throw std::invalid_argument("linear_bias_forward: null bias");
  lt_detail::forward(lt, y, CUDA_R_16BF, x, w, bias, M, K, N, stream);
}

void linear_backward(BlasLt& lt, __nv_bfloat16* dx, float* dw, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                     const __nv_bfloat16* w, int64_t M, int64_t K, int64_t N, cudaStream_t stream, float alpha) {
  lt_detail::check_sizes("linear_backward", M, K, N);
  if (M == 0 || K == 0 || N == 0) return;  // nothing to add
  if (dx) {
    lt_detail::Gemm g;
    g.ta = false, g.tb = false;
    g.m = K, g.n = M, g.k = N;
    g.a = w, g.lda = K;
    g.b = dy, g.ldb = N;
    g.d = dx, g.d_type = CUDA_R_16BF, g.ldd = K;
    g.alpha = alpha, g.beta = 1.0f;
    lt_detail::run(lt, g, stream);
  }
  if (dw) {
    lt_detail::Gemm g;
    g.ta = false, g.tb = true;
    g.m = K, g.n = N, g.k = M;
    g.a = x, g.lda = K;
    g.b = dy, g.ldb = N;
    g.d = dw, g.d_type = CUDA_R_32F, g.ldd = K;
    g.alpha = alpha, g.beta = 1.0f;
    lt_detail::run(lt, g, stream);
  }
}

}  // namespace nemokit::rt::cuda
