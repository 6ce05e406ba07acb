// The experts' GEMMs (moe.cuh): per expert e over its block of expert-order rows,
//   h = x U_e^T, a = relu2(h), y = a D_e^T                      (forward, bf16 out)
//   da = dy D_e, dD_e += dy^T a, dh = da 2 relu(h), dx = dh U_e, dU_e += dh^T x   (backward)
// Row-major [rows, cols] is cuBLAS's column-major [cols, rows], so the row-major y = x W^T
// (x [M, K], W [N, K]) is the column-major y^T = W^T x^T: gemm(T, N, m=N, n=M, k=K, A=W, lda=K,
// B=x, ldb=K, C=y, ldc=N); dx = dy W is gemm(N, N, m=K, n=M, k=N, A=W, lda=K, B=dy, ldb=N,
// C=dx, ldc=K); dW += dy^T x is gemm(N, T, m=K, n=N, k=M, A=x, lda=K, B=dy, ldb=N, C=dW, ldc=K,
// beta=1). All with fp32 accumulation (CUBLAS_COMPUTE_32F, tensor cores for bf16 inputs).
#include <cublas_v2.h>

#include <stdexcept>
#include <vector>

#include "cuda_check.cuh"
#include "elementwise.cuh"
#include "moe.cuh"

namespace nemokit::rt::cuda {
namespace {

// One expert's product: its sizes and its blocks of the operands.
struct Problem {
  int m, n, k;
  const void* A;
  int lda;
  const void* B;
  int ldb;
  void* C;
  int ldc;
};

void gemm_loop(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, const std::vector<Problem>& ps, cudaDataType_t ctype,
               float beta) {
  const float alpha = 1.0f;
  for (const Problem& p : ps)
    NEMOKIT_CUBLAS_CHECK(cublasGemmEx(h, ta, tb, p.m, p.n, p.k, &alpha, p.A, CUDA_R_16BF, p.lda, p.B, CUDA_R_16BF, p.ldb, &beta,
                                      p.C, ctype, p.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// Every expert in one cublasGemmGroupedBatchedEx call, one group per expert (the sizes differ).
// Sizes, transposes and scalars are host arrays; the operand pointers are a device array,
// copied into `dev_ptrs` (3 * E pointers) in stream order: a later call's copy waits for this
// call's GEMM, so one scratch serves every call on the stream. The copy is from pageable memory,
// which cudaMemcpyAsync stages before returning, so the host vector may go at once.
// The grouped call takes bf16 inputs with a bf16 output only (cuBLAS 12.5+ documentation).
void gemm_grouped(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, const std::vector<Problem>& ps, float beta,
                  void** dev_ptrs, cudaStream_t stream) {
  const int G = int(ps.size());
  if (G == 0) return;
  std::vector<cublasOperation_t> tas(G, ta), tbs(G, tb);
  std::vector<int> m(G), n(G), k(G), lda(G), ldb(G), ldc(G), sizes(G, 1);
  std::vector<float> alphas(G, 1.0f), betas(G, beta);
  std::vector<const void*> ptrs(3 * size_t(G));
  for (int g = 0; g < G; ++g) {
    const Problem& p = ps[g];
    m[g] = p.m, n[g] = p.n, k[g] = p.k, lda[g] = p.lda, ldb[g] = p.ldb, ldc[g] = p.ldc;
    ptrs[g] = p.A, ptrs[G + g] = p.B, ptrs[2 * G + g] = p.C;
  }
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(dev_ptrs, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice, stream));
  NEMOKIT_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
      h, tas.data(), tbs.data(), m.data(), n.data(), k.data(), alphas.data(), dev_ptrs, CUDA_R_16BF, lda.data(), dev_ptrs + G,
      CUDA_R_16BF, ldb.data(), betas.data(), dev_ptrs + 2 * G, CUDA_R_16BF, ldc.data(), G, sizes.data(), CUBLAS_COMPUTE_32F));
}

void gemm_bf16_out(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, const std::vector<Problem>& ps, void* scratch,
                   MoeGemmPath path, cudaStream_t stream) {
  if (path == MoeGemmPath::grouped)
    gemm_grouped(h, ta, tb, ps, 0.0f, static_cast<void**>(scratch), stream);
  else
    gemm_loop(h, ta, tb, ps, CUDA_R_16BF, 0.0f);
}

// The experts with rows, in expert order: (expert, first row, rows).
struct Block {
  int64_t e, off;
  int n;
};

std::vector<Block> blocks_of(const int32_t* host_counts, int E) {
  std::vector<Block> out;
  int64_t off = 0;
  for (int e = 0; e < E; ++e) {
    if (host_counts[e] < 0) throw std::invalid_argument("moe experts: negative expert count");
    if (host_counts[e] > 0) out.push_back({e, off, host_counts[e]});
    off += host_counts[e];
  }
  return out;
}

void prepare(cublasHandle_t h, cudaStream_t stream, int64_t d, int64_t inner) {
  if (d > INT32_MAX || inner > INT32_MAX) throw std::invalid_argument("moe experts: width over 2^31");
  NEMOKIT_CUBLAS_CHECK(cublasSetStream(h, stream));
  NEMOKIT_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));  // alpha and beta are host values
}

// dh = da * 2 relu(h), in place over da (the buffer then holds dh).
__global__ void relu2_grad_inplace_kernel(__nv_bfloat16* g, const __nv_bfloat16* h, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = fmaxf(__bfloat162float(h[i]), 0.0f);
    g[i] = __float2bfloat16(2.0f * v * __bfloat162float(g[i]));
  }
}

}  // namespace

size_t moe_experts_scratch_bytes(int E) { return 3 * size_t(E) * sizeof(void*); }

void moe_experts_forward(cublasContext* cublas, void* scratch, const int32_t* host_counts, int E, __nv_bfloat16* h,
                         __nv_bfloat16* a, __nv_bfloat16* y_perm, const __nv_bfloat16* x_perm, const __nv_bfloat16* up,
                         const __nv_bfloat16* down, int64_t d, int64_t inner, cudaStream_t stream, MoeGemmPath path) {
  const std::vector<Block> blocks = blocks_of(host_counts, E);
  if (blocks.empty() || d == 0 || inner == 0) return;
  prepare(cublas, stream, d, inner);
  const int D = int(d), I = int(inner);
  std::vector<Problem> ps;
  // h_e = x_e U_e^T
  for (const Block& b : blocks) ps.push_back({I, b.n, D, up + b.e * inner * d, D, x_perm + b.off * d, D, h + b.off * inner, I});
  gemm_bf16_out(cublas, CUBLAS_OP_T, CUBLAS_OP_N, ps, scratch, path, stream);
  const int64_t n_rows = blocks.back().off + blocks.back().n;
  relu2_forward(a, h, n_rows * inner, stream);
  // y_e = a_e D_e^T
  ps.clear();
  for (const Block& b : blocks) ps.push_back({D, b.n, I, down + b.e * d * inner, I, a + b.off * inner, I, y_perm + b.off * d, D});
  gemm_bf16_out(cublas, CUBLAS_OP_T, CUBLAS_OP_N, ps, scratch, path, stream);
}

void moe_experts_backward(cublasContext* cublas, void* scratch, const int32_t* host_counts, int E, __nv_bfloat16* dx_perm,
                          float* d_up, float* d_down, __nv_bfloat16* dh, const __nv_bfloat16* dy_perm,
                          const __nv_bfloat16* x_perm, const __nv_bfloat16* h, const __nv_bfloat16* a, const __nv_bfloat16* up,
                          const __nv_bfloat16* down, int64_t d, int64_t inner, cudaStream_t stream, MoeGemmPath path) {
  const std::vector<Block> blocks = blocks_of(host_counts, E);
  if (blocks.empty() || d == 0 || inner == 0) return;
  prepare(cublas, stream, d, inner);
  const int D = int(d), I = int(inner);
  std::vector<Problem> ps;
  // da_e = dy_e D_e, into dh
  for (const Block& b : blocks)
    ps.push_back({I, b.n, D, down + b.e * d * inner, I, dy_perm + b.off * d, D, dh + b.off * inner, I});
  gemm_bf16_out(cublas, CUBLAS_OP_N, CUBLAS_OP_N, ps, scratch, path, stream);
  // dD_e += dy_e^T a_e (fp32 out: a loop on either path); none for frozen experts
  ps.clear();
  if (d_down)
    for (const Block& b : blocks)
      ps.push_back({I, D, b.n, a + b.off * inner, I, dy_perm + b.off * d, D, d_down + b.e * d * inner, I});
  gemm_loop(cublas, CUBLAS_OP_N, CUBLAS_OP_T, ps, CUDA_R_32F, 1.0f);
  // dh = da 2 relu(h)
  const int64_t n = (blocks.back().off + blocks.back().n) * inner;
  const int threads = 256;
  const int64_t want = (n + threads - 1) / threads;
  NEMOKIT_LAUNCH(unsigned(want < 65536 * 8 ? want : 65536 * 8), threads, 0, stream, relu2_grad_inplace_kernel)(dh, h, n);
  NEMOKIT_CUDA_LAUNCHED("relu2_grad_inplace_kernel");
  // dx_e = dh_e U_e
  ps.clear();
  for (const Block& b : blocks) ps.push_back({D, b.n, I, up + b.e * inner * d, D, dh + b.off * inner, I, dx_perm + b.off * d, D});
  gemm_bf16_out(cublas, CUBLAS_OP_N, CUBLAS_OP_N, ps, scratch, path, stream);
  // dU_e += dh_e^T x_e
  ps.clear();
  if (d_up)
    for (const Block& b : blocks)
      ps.push_back({D, I, b.n, x_perm + b.off * d, D, dh + b.off * inner, I, d_up + b.e * inner * d, D});
  gemm_loop(cublas, CUBLAS_OP_N, CUBLAS_OP_T, ps, CUDA_R_32F, 1.0f);
}

}  // namespace nemokit::rt::cuda
