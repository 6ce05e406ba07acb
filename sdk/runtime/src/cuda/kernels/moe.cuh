// Mixture-of-experts kernels, forward and backward, as src/model/moe_mixer.cpp computes the
// routed part of the layer (the shared expert is a plain MLP; the router's x Wg^T and its
// backward are plain linears done elsewhere):
//   router    s = sigmoid(logits) (fp32); top-k of s + bias, ties to the lower expert id;
//             w = s[topk] / (sum s[topk] + 1e-20) * scale (or s[topk] * scale without norm)
//   dispatch  the (row, slot) pairs grouped by expert in token order (a stable counting sort)
//   gather    x_perm[p] = x[row of p]                     (bf16 copy)
//   experts   y_perm = relu2(x_perm U_e^T) D_e^T over each expert's block of rows (cuBLAS)
//   combine   out[row] += sum_j w[row, j] * y_perm[pos(row, j)]
// Index maps, all int32 (rows * k must stay below 2^31): for the flat pair i = row * k + slot,
// perm_pos[i] is its row in the expert order; perm_src[p] is the pair at expert-order row p.
// Expert e owns expert-order rows [offsets[e], offsets[e + 1]).
// Weights are stacked: up [E, inner, d] and down [E, d, inner] bf16 (expert e's up_proj.weight
// and down_proj.weight); their gradients the same shapes in fp32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

// cublasHandle_t is `cublasContext*`; naming the struct keeps cublas_v2.h out of this header.
struct cublasContext;

namespace nemokit::rt::cuda {

// ---- router ----
// Writes topk_ids [rows, k] (best first), topk_weights [rows, k] and scores [rows, E] (the
// sigmoids, kept for the backward). stat_counts [E] (may be null) ADDS one per chosen expert of
// every row not marked in pad (may be null): the statistics of the aux-loss-free bias update,
// which pad tokens must not enter. Needs 1 <= k <= E.
void moe_router_forward(int32_t* topk_ids, float* topk_weights, float* scores, int32_t* stat_counts, const float* logits,
                        const float* bias, const uint8_t* pad, int64_t rows, int E, int k, float scale, bool norm_topk,
                        cudaStream_t stream);
// dlogits [rows, E] ADDS the gradient reaching the logits from d(topk_weights) through the
// normalization and the sigmoid (the bias gets none). Only the chosen experts' entries change.
void moe_router_backward(float* dlogits, const float* dweights, const int32_t* topk_ids, const float* scores, int64_t rows, int E,
                         int k, float scale, bool norm_topk, cudaStream_t stream);

// ---- dispatch ----
// Device scratch moe_dispatch needs (per-chunk histograms).
size_t moe_dispatch_scratch_bytes(int64_t rows, int k, int E);
// From topk_ids [rows, k]: expert_counts [E] (every row, pad included: pad rows are computed
// too), expert_offsets [E + 1] (exclusive scan, offsets[E] = rows * k), perm_src and perm_pos
// [rows * k]. All written; deterministic (no atomics decide an order).
void moe_dispatch(int32_t* expert_counts, int32_t* expert_offsets, int32_t* perm_src, int32_t* perm_pos, void* scratch,
                  const int32_t* topk_ids, int64_t rows, int k, int E, cudaStream_t stream);
// The one synchronizing call of the layer: copies expert_counts to host_counts [E] and waits for
// the stream, since cuBLAS takes the experts' GEMM sizes from the host. Call it once per forward
// and keep the host counts for the backward (they do not change).
void moe_expert_counts_to_host(int32_t* host_counts, const int32_t* expert_counts, int E, cudaStream_t stream);

// x_perm [rows * k, d] is written with x [rows, d]'s row of each expert-order row.
void moe_gather(__nv_bfloat16* x_perm, const __nv_bfloat16* x, const int32_t* perm_src, int64_t rows, int k, int64_t d,
                cudaStream_t stream);
// Its backward: dx [rows, d] ADDS sum_j dx_perm[perm_pos[row * k + j]].
void moe_gather_backward(__nv_bfloat16* dx, const __nv_bfloat16* dx_perm, const int32_t* perm_pos, int64_t rows, int k, int64_t d,
                         cudaStream_t stream);

// ---- experts ----
// grouped: cublasGemmGroupedBatchedEx for the products with bf16 outputs (one call for all the
// experts), a loop of cublasGemmEx for the fp32 weight gradients, which the grouped call does
// not offer (bf16 inputs with an fp32 output). loop: cublasGemmEx per expert throughout.
enum class MoeGemmPath { grouped, loop };
// Device scratch the expert GEMMs need (the grouped call's pointer arrays).
size_t moe_experts_scratch_bytes(int E);
// host_counts [E]: moe_expert_counts_to_host's. n = sum of the counts = rows * k. Writes
// h [n, inner] (x_perm U_e^T), a [n, inner] (relu2(h)) and y_perm [n, d] (a D_e^T); h and a are
// what the backward reads. Sets the handle's stream to `stream` and its pointer mode to host.
void moe_experts_forward(cublasContext* cublas, void* scratch, const int32_t* host_counts, int E, __nv_bfloat16* h,
                         __nv_bfloat16* a, __nv_bfloat16* y_perm, const __nv_bfloat16* x_perm, const __nv_bfloat16* up,
                         const __nv_bfloat16* down, int64_t d, int64_t inner, cudaStream_t stream,
                         MoeGemmPath path = MoeGemmPath::grouped);
// Writes dx_perm [n, d] and uses dh [n, inner] as scratch (it ends as the gradient of h); d_up
// [E, inner, d] and d_down [E, d, inner] ADD (fp32; null: frozen experts). dy_perm is the gradient of y_perm.
void moe_experts_backward(cublasContext* cublas, void* scratch, const int32_t* host_counts, int E, __nv_bfloat16* dx_perm,
                          float* d_up, float* d_down, __nv_bfloat16* dh, const __nv_bfloat16* dy_perm,
                          const __nv_bfloat16* x_perm, const __nv_bfloat16* h, const __nv_bfloat16* a, const __nv_bfloat16* up,
                          const __nv_bfloat16* down, int64_t d, int64_t inner, cudaStream_t stream,
                          MoeGemmPath path = MoeGemmPath::grouped);

// ---- combine ----
// out [rows, d] ADDS sum_j topk_weights[row, j] * y_perm[perm_pos[row * k + j]] (fp32 sum).
void moe_combine(__nv_bfloat16* out, const __nv_bfloat16* y_perm, const float* topk_weights, const int32_t* perm_pos,
                 int64_t rows, int k, int64_t d, cudaStream_t stream);
// Its backward, from dout [rows, d]: WRITES dy_perm [rows * k, d] = w * dout[row] and dweights
// [rows, k] = dout[row] . y_perm[pos]. Written, not added: both are intermediates of the MoE
// backward that nothing else contributes to (each expert-order row has exactly one source).
void moe_combine_backward(__nv_bfloat16* dy_perm, float* dweights, const __nv_bfloat16* dout, const __nv_bfloat16* y_perm,
                          const float* topk_weights, const int32_t* perm_pos, int64_t rows, int k, int64_t d,
                          cudaStream_t stream);

}  // namespace nemokit::rt::cuda
