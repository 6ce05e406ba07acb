// GpuNemotronH's passes: NemotronH::backbone_forward, forward, forward_backward and
// backbone_backward step for step, with each block's residual add fused into the next norm.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "glue.cuh"
#include "matmul_loss.cuh"
#include "model_impl.hpp"
#include "norm.cuh"

namespace nemokit::rt::cuda {

GpuNemotronH::Impl::Impl(NemotronH& model, cudaStream_t stream, bool training)
    : model(model), config(model.config()), stream(stream), params(model, training) {
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

void GpuNemotronH::Impl::backbone(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc,
                                  bool training, const uint8_t* pad) {
  if (batch <= 0 || seq <= 0) throw std::invalid_argument("GpuNemotronH: batch and seq must be positive");
  const int64_t R = batch * seq, d = config.hidden_size, V = config.vocab_size;
  const float eps = config.layer_norm_epsilon;
  rows = R;
  const size_t L = blocks.size();
  for (auto& h : residual) h.reserve(R * d);
  bf16* delta = mixed.reserve(R * d);
  embedding_forward(residual[0].get(), tokens, embedding, R, V, d, bad_id.get(), stream);
  run = MixerRun{&lt, cublas, stream, batch, seq, R, doc, training, pad};
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

void GpuNemotronH::Impl::backbone_backward(const bf16* dfinal, const int32_t* tokens) {
  const int64_t R = rows, d = config.hidden_size, V = config.vocab_size;
  bf16* dh = dresidual.reserve(R * d);
  bf16* dn = dnormed.reserve(R * d);
  // The norms' weight-gradient workspace comes from the stream-ordered allocator (null).
  NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dh, 0, sizeof(bf16) * R * d, stream));
  rmsnorm_backward(dh, norm_f_grad, dfinal, residual[blocks.size()].get(), norm_f, final_rstd.get(), R, d, d, nullptr,
                   stream);
  // h_{l+1} = h_l + mixer(norm(h_l)): dh passes through and gains the norm's and mixer's way back.
  for (size_t l = blocks.size(); l-- > 0;) {
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dn, 0, sizeof(bf16) * R * d, stream));
    blocks[l].mixer->backward(run, normed[l].get(), dh, dn);
    rmsnorm_backward(dh, blocks[l].norm_grad, dn, residual[l].get(), blocks[l].norm, rstd[l].get(), R, d, d, nullptr,
                     stream);
  }
  if (embedding_grad) embedding_backward(embedding_grad, dh, tokens, R, V, d, stream);
}

void GpuNemotronH::Impl::upload_batch(const Batch& b) {
  b.validate(config.vocab_size);
  if (!b.media.empty()) throw std::invalid_argument("GpuNemotronH: media inputs (omni encoders) are not supported on the GPU yet");
  auto upload = [this](auto& buffer, const auto& host) {
    if (host.empty()) return;
    NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(buffer.reserve(host.size()), host.data(), sizeof(host[0]) * host.size(),
                                       cudaMemcpyHostToDevice, stream));
  };
  upload(tokens, b.input_ids);
  upload(targets, b.targets);
  upload(doc, b.doc_ids);
  upload(loss_weights, b.loss_weights);
  upload(pad, b.pad);
  // The host vectors may be freed once the call returns: wait for the copies.
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
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

GpuNemotronH::GpuNemotronH(NemotronH& model, cudaStream_t stream, bool training)
    : impl_(std::make_unique<Impl>(model, stream, training)) {}
GpuNemotronH::~GpuNemotronH() = default;

const NemotronHConfig& GpuNemotronH::config() const { return impl_->config; }

void GpuNemotronH::upload_weights() { impl_->params.upload(); }
void GpuNemotronH::upload_buffers() { impl_->params.upload_buffers(); }
void GpuNemotronH::zero_grad() { impl_->params.zero_grad(impl_->stream); }

void GpuNemotronH::download_grads() {
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  impl_->params.download_grads();
}

std::vector<std::vector<int64_t>> GpuNemotronH::take_expert_load() {
  Impl& m = *impl_;
  std::vector<std::vector<int64_t>> load;
  for (auto& b : m.blocks) {
    int32_t* counts = b.mixer->router_counts();
    if (!counts) continue;
    const auto E = size_t(m.config.n_routed_experts);
    std::vector<int32_t> host(E);
    NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(host.data(), counts, sizeof(int32_t) * E, cudaMemcpyDeviceToHost, m.stream));
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(counts, 0, sizeof(int32_t) * E, m.stream));
    NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    load.emplace_back(host.begin(), host.end());
  }
  return load;
}

const float* GpuNemotronH::forward(const int32_t* tokens, int64_t batch, int64_t seq, const int32_t* doc) {
  Impl& m = *impl_;
  m.backbone(tokens, batch, seq, doc);
  const int64_t R = m.rows, d = m.config.hidden_size, V = m.config.vocab_size;
  float* logits = m.logits.reserve(R * V);
  linear_forward(m.lt, logits, m.final_normed.get(), m.lm_head, R, d, V, m.stream);  // fp32, as the reference's head
  m.check_token_ids();
  return logits;
}

namespace {

// forward_backward's work; the per-row losses (and entropies, forward only, when asked) stay in
// m.row_loss (m.row_entropy) until the next call.
StepResult run_step(GpuNemotronH::Impl& m, const Batch& batch, const LossOptions& opts, bool backward, bool entropy) {
  if (opts.moe_aux_loss_coeff > 0)
    throw std::invalid_argument("GpuNemotronH: the MoE aux loss (moe_aux_loss_coeff) is not supported on the GPU yet");
  m.upload_batch(batch);
  const int64_t R = batch.batch * batch.seq, d = m.config.hidden_size, V = m.config.vocab_size;
  const int32_t* doc = batch.doc_ids.empty() ? nullptr : m.doc.get();
  const uint8_t* pad = batch.pad.empty() ? nullptr : m.pad.get();
  m.backbone(m.tokens.get(), batch.batch, batch.seq, doc, backward, pad);
  StepResult result;
  if (batch.targets.empty()) {
    NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(m.stream));
    return result;
  }

  // NemotronH::forward_backward's reduction: mean over counted tokens unless the rows carry
  // their own weights (which then hold the normalization). The count is the host's.
  for (int32_t t : batch.targets) result.tokens += t >= 0;
  const bool weighted = !batch.loss_weights.empty();
  const float norm = opts.mean && !weighted ? 1.0f / float(std::max<int64_t>(1, result.tokens)) : 1.0f;
  const float* weights = weighted ? m.loss_weights.get() : nullptr;
  ChunkedLoss p;
  p.h = m.final_normed.get(), p.w = m.lm_head, p.targets = m.targets.get(), p.row_weight = weights;
  p.rows = R, p.C = d, p.V = V;
  p.chunk_rows = chunked_loss_chunk_rows(V, kChunkedLossBudgetBytes, backward, R);
  p.scratch_bytes = chunked_loss_scratch_bytes(p.chunk_rows, V, backward);
  p.scratch = m.loss_scratch.reserve(p.scratch_bytes);
  float* row_loss = m.row_loss.reserve(R);
  bf16* dfinal = nullptr;
  if (backward) {
    dfinal = m.dfinal.reserve(R * d);
    NEMOKIT_CUDA_CHECK(cudaMemsetAsync(dfinal, 0, sizeof(bf16) * R * d, m.stream));
    chunked_cross_entropy(m.lt, p, norm * opts.grad_scale, row_loss, nullptr, dfinal, m.lm_head_grad, m.stream);
  } else {
    chunked_cross_entropy_forward(m.lt, p, row_loss, nullptr, m.stream, entropy ? m.row_entropy.reserve(R) : nullptr);
  }
  double totals[3];
  loss_totals(m.loss_totals.reserve(3), row_loss, m.targets.get(), weights, R, m.stream);
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(totals, m.loss_totals.get(), sizeof totals, cudaMemcpyDeviceToHost, m.stream));
  if (backward) m.backbone_backward(dfinal, m.tokens.get());
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(m.stream));

  result.loss_sum = totals[0];
  result.loss = float(weighted ? totals[2] : result.loss_sum * norm);
  return result;
}

}  // namespace

StepResult GpuNemotronH::forward_backward(const Batch& batch, const LossOptions& opts, bool backward) {
  return run_step(*impl_, batch, opts, backward, false);
}

std::vector<float> GpuNemotronH::token_losses(const Batch& batch, std::vector<float>* entropy) {
  Impl& m = *impl_;
  const size_t R = size_t(batch.batch * batch.seq);
  std::vector<float> losses(R, 0.0f);
  if (entropy) entropy->assign(R, 0.0f);
  if (batch.targets.empty()) return losses;
  run_step(m, batch, LossOptions{}, false, entropy != nullptr);
  NEMOKIT_CUDA_CHECK(cudaMemcpy(losses.data(), m.row_loss.get(), sizeof(float) * R, cudaMemcpyDeviceToHost));
  if (entropy)
    NEMOKIT_CUDA_CHECK(cudaMemcpy(entropy->data(), m.row_entropy.get(), sizeof(float) * R, cudaMemcpyDeviceToHost));
  return losses;
}

}  // namespace nemokit::rt::cuda
