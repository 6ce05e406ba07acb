// GpuNemotronH's passes: NemotronH::backbone_forward, forward and forward_backward(backward =
// false) step for step, with each block's residual add fused into the next norm.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "glue.cuh"
#include "matmul_loss.cuh"
#include "model_impl.hpp"
#include "norm.cuh"

namespace nemokit::rt::cuda {

GpuNemotronH::Impl::Impl(NemotronH& model, cudaStream_t stream)
    : model(model), config(model.config()), stream(stream), params(model) {
  check_supported(model);
  NEMOKIT_CUBLAS_CHECK(cublasCreate(&cublas));
  build_layers(*this);
  const size_t L = blocks.size();
  residual.resize(L + 1), normed.resize(L), rstd.resize(L);
  NEMOKIT_CUDA_CHECK(cudaMemset(bad_id.reserve(1), 0, sizeof(int32_t)));
}

GpuNemotronH::Impl::~Impl() {
  if (cublas) cublasDestroy(cublas);
}

void GpuNemotronH::Impl::backbone(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc) {
  if (batch <= 0 || seq <= 0) throw std::invalid_argument("GpuNemotronH: batch and seq must be positive");
  const int64_t R = batch * seq, d = config.hidden_size, V = config.vocab_size;
  const float eps = config.layer_norm_epsilon;
  rows = R;
  const size_t L = blocks.size();
  for (auto& h : residual) h.reserve(R * d);
  bf16* delta = mixed.reserve(R * d);
  embedding_forward(residual[0].get(), tokens, embedding, R, V, d, bad_id.get(), stream);
  MixerRun run{&lt, cublas, stream, batch, seq, R, doc};
  // The first norm reads the embeddings as they are; every later one is fused with the residual
  // add before it.
  residual_rmsnorm_forward(residual[0].get(), L ? normed[0].reserve(R * d) : final_normed.reserve(R * d),
                           L ? rstd[0].reserve(R) : final_rstd.reserve(R), residual[0].get(), nullptr,
                           L ? blocks[0].norm : norm_f, R, d, d, eps, stream);
  for (size_t l = 0; l < L; ++l) {
    blocks[l].mixer->forward(run, normed[l].get(), delta);
    // h_{l+1} = h_l + mixer(norm(h_l)), rounded to bf16 (the residual stream's type on the GPU),
    // and the next norm of it, in one pass. h_{l+1} gets a buffer of its own: the backward reads
    // every block's input, as the CPU model keeps residual_.
    const bool last = l + 1 == L;
    bf16* next_y = last ? final_normed.reserve(R * d) : normed[l + 1].reserve(R * d);
    float* next_r = last ? final_rstd.reserve(R) : rstd[l + 1].reserve(R);
    residual_rmsnorm_forward(residual[l + 1].get(), next_y, next_r, residual[l].get(), delta,
                             last ? norm_f : blocks[l + 1].norm, R, d, d, eps, stream);
  }
}

void GpuNemotronH::Impl::check_token_ids() {
  int32_t bad = 0;
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(&bad, bad_id.get(), sizeof bad, cudaMemcpyDeviceToHost, stream));
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad) {
    NEMOKIT_CUDA_CHECK(cudaMemset(bad_id.get(), 0, sizeof(int32_t)));
    throw std::invalid_argument("GpuNemotronH: an input id is outside the vocabulary (" +
                                std::to_string(config.vocab_size) + ")");
  }
}

GpuNemotronH::GpuNemotronH(NemotronH& model, cudaStream_t stream) : impl_(std::make_unique<Impl>(model, stream)) {}
GpuNemotronH::~GpuNemotronH() = default;

const NemotronHConfig& GpuNemotronH::config() const { return impl_->config; }

void GpuNemotronH::upload_weights() { impl_->params.upload(); }

const float* GpuNemotronH::forward(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc) {
  Impl& m = *impl_;
  m.backbone(tokens, batch, seq, doc);
  const int64_t R = m.rows, d = m.config.hidden_size, V = m.config.vocab_size;
  float* logits = m.logits.reserve(R * V);
  linear_forward(m.lt, logits, m.final_normed.get(), m.lm_head, R, d, V, m.stream);  // fp32, as the reference's head
  m.check_token_ids();
  return logits;
}

StepResult GpuNemotronH::loss(const int32_t* tokens, const int32_t* targets, int64_t batch, int64_t seq,
                              const int32_t* doc, const float* loss_weights, const LossOptions& opts) {
  Impl& m = *impl_;
  if (!targets) throw std::invalid_argument("GpuNemotronH::loss: targets are required");
  m.backbone(tokens, batch, seq, doc);
  const int64_t R = m.rows, V = m.config.vocab_size;
  ChunkedLoss p;
  p.h = m.final_normed.get(), p.w = m.lm_head, p.targets = targets, p.row_weight = loss_weights;
  p.rows = R, p.C = m.config.hidden_size, p.V = V;
  p.chunk_rows = chunked_loss_chunk_rows(V, kChunkedLossBudgetBytes, false, R);
  p.scratch_bytes = chunked_loss_scratch_bytes(p.chunk_rows, V, false);
  p.scratch = m.loss_scratch.reserve(p.scratch_bytes);
  float* row_loss = m.row_loss.reserve(R);
  chunked_cross_entropy_forward(m.lt, p, row_loss, nullptr, m.stream);
  double totals[3];
  loss_totals(m.loss_totals.reserve(3), row_loss, targets, loss_weights, R, m.stream);
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(totals, m.loss_totals.get(), sizeof totals, cudaMemcpyDeviceToHost, m.stream));
  m.check_token_ids();  // synchronizes, so totals has arrived

  // NemotronH::forward_backward's reduction: mean over counted tokens unless the rows carry
  // their own weights (which then hold the normalization).
  StepResult result;
  result.loss_sum = totals[0];
  result.tokens = int64_t(totals[1]);
  const bool weighted = loss_weights != nullptr;
  const float norm = opts.mean && !weighted ? 1.0f / float(std::max<int64_t>(1, result.tokens)) : 1.0f;
  result.loss = float(weighted ? totals[2] : result.loss_sum * norm);
  return result;
}

}  // namespace nemokit::rt::cuda
