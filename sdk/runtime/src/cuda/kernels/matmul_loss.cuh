// Cross-entropy over the vocabulary: the row kernel (logits in, loss and dlogits out), and the loss of
// the lm_head in row chunks, logits -> loss -> gradients of h and of the head, without ever holding
// the logits (or their gradient) of all rows at once.
//
// Semantics are kernels::cross_entropy's: targets < 0 are ignored rows (loss 0, gradient 0), the
// row weight multiplies the gradient only, the summed loss is unweighted; dlogits is
// grad_scale * w_r * (softmax - onehot).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "matmul.cuh"

namespace nemokit::rt::cuda {

// logits [rows, V] fp32 -> row_loss [rows] (written) and, when dlogits is non-null, dlogits [rows, V]
// bf16 WRITTEN (zero for ignored rows), as kernels::cross_entropy. row_weight may be null. A target
// >= V is a caller's bug: that row's loss is NaN. One block per row. row_entropy (may be null):
// [rows] written with the entropy (nats) of softmax(logits), 0 for ignored rows (one more read of
// the row).
void cross_entropy(float* row_loss, __nv_bfloat16* dlogits, const float* logits, const int32_t* targets,
                   const float* row_weight, float grad_scale, int64_t rows, int64_t V, cudaStream_t stream,
                   float* row_entropy = nullptr);

// total[0] = sum of row_loss[0..rows) (written; fp32 result of a double sum in a fixed order, so the
// same inputs always give the same bits).
void sum_rows(float* total, const float* row_loss, int64_t rows, cudaStream_t stream);

// The chunked loss of the lm_head. Each chunk of rows computes its logits h W^T in fp32 (cuBLASLt),
// the loss and, with gradients, dlogits in bf16 (cross_entropy above), then dh += dlogits W and
// dW += dlogits^T h (fp32) with cuBLASLt, before the next chunk reuses the buffers.
struct ChunkedLoss {
  const __nv_bfloat16* h = nullptr;   // [rows, C] final hidden states (after norm_f)
  const __nv_bfloat16* w = nullptr;   // [V, C] lm_head weight
  const int32_t* targets = nullptr;   // [rows], < 0: ignored
  const float* row_weight = nullptr;  // [rows] or null
  int64_t rows = 0, C = 0, V = 0;
  // Rows per chunk; 0: as many as scratch_bytes holds. A chunk of n rows needs n*V*4 bytes of fp32
  // logits (+ n*V*2 of bf16 dlogits with gradients): see chunked_loss_scratch_bytes.
  int64_t chunk_rows = 0;
  void* scratch = nullptr;  // device memory, 256-byte aligned (cudaMalloc's)
  size_t scratch_bytes = 0;
};

// A budget for the scratch: 1 GiB is ~1365 rows per chunk at V = 131072 with gradients. Fewer rows
// per chunk cost more than they seem: dW (fp32 [V, C], 1.4 GB at the model's size) is read and
// written once per chunk, and with ~340 rows (256 MiB) that traffic outweighs the chunk's FLOPs.
inline constexpr size_t kChunkedLossBudgetBytes = size_t(1) << 30;

// Bytes of scratch for chunk_rows rows per chunk (logits fp32, then dlogits bf16 at a 256-byte
// aligned offset when with_grad).
size_t chunked_loss_scratch_bytes(int64_t chunk_rows, int64_t V, bool with_grad);
// The most rows per chunk whose buffers fit budget_bytes (at least 1; at most rows when rows > 0).
int64_t chunked_loss_chunk_rows(int64_t V, size_t budget_bytes, bool with_grad, int64_t rows = 0);

// Forward only (evaluation, RL's scoring): row_loss [rows] written; loss_sum (device, one float,
// may be null) written with the summed loss; row_entropy (may be null) as cross_entropy's.
void chunked_cross_entropy_forward(BlasLt& lt, const ChunkedLoss& p, float* row_loss, float* loss_sum,
                                   cudaStream_t stream, float* row_entropy = nullptr);
// Forward and backward: as above, plus dh [rows, C] bf16 += d(loss)/dh and dw [V, C] fp32
// += d(loss)/dW, each scaled by grad_scale * row_weight (either may be null).
void chunked_cross_entropy(BlasLt& lt, const ChunkedLoss& p, float grad_scale, float* row_loss, float* loss_sum,
                           __nv_bfloat16* dh, float* dw, cudaStream_t stream);

}  // namespace nemokit::rt::cuda
