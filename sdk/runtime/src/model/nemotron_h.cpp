#include <cmath>
#include <cstring>
#include <stdexcept>

#include "encoder.hpp"
#include "mixers.hpp"
#include "mtp.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt {
namespace k = kernels;

namespace detail {

void fill_normal(Tensor& t, Rng& rng, float stddev) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = stddev * rng.normal();
}
void fill_uniform(Tensor& t, Rng& rng, float bound) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = bound * (2.0f * rng.uniform() - 1.0f);
}
void fill_value(Tensor& t, float v) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = v;
}

}  // namespace detail

void Batch::set_documents(const std::vector<std::vector<int64_t>>& cu_seqlens) {
  if (int64_t(cu_seqlens.size()) != batch) throw std::invalid_argument("set_documents: need one cu_seqlens list per row");
  doc_ids.assign(batch * seq, 0);
  int32_t next = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& cu = cu_seqlens[b];
    if (cu.size() < 2 || cu.front() != 0 || cu.back() != seq)
      throw std::invalid_argument("set_documents: row " + std::to_string(b) + ": cu_seqlens must run from 0 to seq");
    for (size_t d = 0; d + 1 < cu.size(); ++d) {
      if (cu[d + 1] < cu[d]) throw std::invalid_argument("set_documents: cu_seqlens must not decrease");
      for (int64_t t = cu[d]; t < cu[d + 1]; ++t) doc_ids[b * seq + t] = next;
      ++next;
    }
  }
}

void Batch::validate(int64_t vocab) const {
  const size_t n = size_t(batch * seq);
  if (batch <= 0 || seq <= 0) throw std::invalid_argument("batch: batch and seq must be positive");
  if (input_ids.size() != n)
    throw std::invalid_argument("batch: input_ids has " + std::to_string(input_ids.size()) +
                                " ids, expected batch*seq = " + std::to_string(n));
  if (!targets.empty() && targets.size() != n) throw std::invalid_argument("batch: targets size differs from batch*seq");
  if (!doc_ids.empty() && doc_ids.size() != n) throw std::invalid_argument("batch: doc_ids size differs from batch*seq");
  if (!pad.empty() && pad.size() != n) throw std::invalid_argument("batch: pad size differs from batch*seq");
  if (!loss_weights.empty() && loss_weights.size() != n)
    throw std::invalid_argument("batch: loss_weights size differs from batch*seq");
  std::vector<bool> taken(media.empty() ? 0 : n, false);
  for (size_t m = 0; m < media.size(); ++m) {
    for (size_t o = 0; o < m; ++o)
      if (media[o].modality == media[m].modality)
        throw std::invalid_argument(std::string("batch: more than one ") + modality_name(media[m].modality) + " input");
    for (int64_t pos : media[m].positions) {
      if (pos < 0 || pos >= int64_t(n) || taken[pos])
        throw std::invalid_argument("batch: media position " + std::to_string(pos) +
                                    (pos < 0 || pos >= int64_t(n) ? " is outside the batch" : " is taken twice"));
      taken[pos] = true;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (input_ids[i] < 0 || input_ids[i] >= vocab)
      throw std::invalid_argument("batch: input id " + std::to_string(input_ids[i]) + " at position " + std::to_string(i) +
                                  " is outside the vocabulary (" + std::to_string(vocab) + ")");
    if (!targets.empty() && targets[i] >= vocab)
      throw std::invalid_argument("batch: target " + std::to_string(targets[i]) + " at position " + std::to_string(i) +
                                  " is outside the vocabulary");
  }
}

NemotronH::NemotronH(NemotronHConfig config) : config_(std::move(config)) { build(); }

NemotronH::NemotronH(NemotronHConfig config, Communicator* expert_comm, int ep) : config_(std::move(config)) {
  if (expert_comm && ep > 1) {
    if (expert_comm->size() % ep != 0)
      throw std::invalid_argument("expert parallel: groups of " + std::to_string(ep) + " ranks do not divide the " +
                                  std::to_string(expert_comm->size()) + " ranks");
    if (config_.n_routed_experts % ep != 0)
      throw std::invalid_argument("expert parallel: the model's " + std::to_string(config_.n_routed_experts) +
                                  " routed experts (n_routed_experts) do not split evenly over " + std::to_string(ep) + " ranks");
    expert_comm_ = expert_comm;
    expert_parallel_ = ep;
  }
  build();
}

void NemotronH::build() {
  config_.validate("model config");
  config_.check_fits_in_memory("model config");
  const auto& c = config_;
  detail::ExpertShard shard;
  shard.comm = expert_comm_;
  shard.group = expert_parallel_;
  shard.remote = [this](const std::string& name, std::vector<int64_t> shape, int owner) {
    layout_.push_back({name, std::move(shape), nullptr, owner});
  };
  embedding_ = add_param("backbone.embeddings.weight", {c.vocab_size, c.hidden_size}, true);
  detail::ParamFactory add = [this](const std::string& n, std::vector<int64_t> s, bool decay) {
    return add_param(n, std::move(s), decay);
  };
  for (int l = 0; l < int(c.num_layers()); ++l) {
    std::string prefix = "backbone.layers." + std::to_string(l) + ".";
    Parameter* norm = add_param(prefix + "norm.weight", {c.hidden_size}, false);
    std::unique_ptr<detail::Mixer> mixer;
    switch (c.pattern[l]) {
      case 'M':
        mixer = detail::make_mamba2(c, l, add);
        break;
      case '*':
        mixer = detail::make_attention(c, l, add);
        break;
      case '-':
        mixer = detail::make_mlp(c, prefix + "mixer.", c.intermediate_size, add);
        break;
      case 'E':
        mixer = detail::make_moe(c, prefix + "mixer.", add, shard);
        break;
    }
    blocks_.push_back(std::make_unique<detail::Block>(norm, std::move(mixer)));
  }
  norm_f_ = add_param("backbone.norm_f.weight", {c.hidden_size}, false);
  lm_head_ = c.tie_word_embeddings ? embedding_ : add_param("lm_head.weight", {c.vocab_size, c.hidden_size}, true);
  if (c.num_nextn_predict_layers > 0) mtp_ = std::make_unique<detail::Mtp>(c, add, shard);
  for (auto& p : params_)
    if (p.buffer) p.grad = Tensor();
  for (Modality m : {Modality::vision, Modality::audio}) {
    const std::string key = std::string(modality_name(m)) + "_config";
    if (c.extra.contains(key))
      encoders_.push_back(
          std::make_unique<detail::Encoder>(EncoderConfig::from_json(c.extra[key], m, "model config: " + key), add));
  }
}

NemotronH::~NemotronH() = default;

Parameter* NemotronH::add_param(const std::string& name, std::vector<int64_t> shape, bool decay) {
  Parameter p;
  p.name = name;
  p.value = Tensor::zeros(shape);
  p.grad = Tensor::zeros(shape);
  p.decay = decay;
  params_.push_back(std::move(p));
  const int here = expert_comm_ ? expert_comm_->rank() % expert_parallel_ : 0;  // the position in the group
  layout_.push_back({name, std::move(shape), &params_.back(), here});
  return &params_.back();
}

void NemotronH::init_weights(uint64_t seed) {
  Rng rng(seed);
  const auto& c = config_;
  detail::fill_normal(embedding_->value, rng, c.initializer_range);
  for (auto& b : blocks_) {
    detail::fill_value(b->norm->value, 1.0f);
    b->mixer->init(rng, c);
  }
  detail::fill_value(norm_f_->value, 1.0f);
  if (lm_head_ != embedding_) detail::fill_normal(lm_head_->value, rng, c.initializer_range);
  if (mtp_) mtp_->init(rng, c);
  for (auto& e : encoders_) e->init(rng);  // after the language model's: its draws stay the same
}

std::vector<Parameter*> NemotronH::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : params_) out.push_back(&p);
  return out;
}

Parameter* NemotronH::find(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void NemotronH::zero_grad() {
  for (auto& p : params_)
    if (p.grad.defined()) p.grad.zero();
}

void NemotronH::set_frozen(const std::string& prefix, bool frozen) {
  for (auto& p : params_)
    if (!p.buffer && p.name.compare(0, prefix.size(), prefix) == 0) {
      p.trainable = !frozen;
      if (!frozen && !p.grad.defined()) p.grad = Tensor::zeros(p.value.shape());  // add_lora dropped it
    }
}

std::vector<detail::Linear*> NemotronH::linears() {
  std::vector<detail::Linear*> out;
  for (auto& b : blocks_) b->mixer->linears(out);
  return out;
}

const Tensor& NemotronH::forward(const Batch& batch) {
  Batch copy = batch;
  copy.targets.clear();  // logits only
  forward_backward(copy, LossOptions{}, false);
  return logits_;
}

detail::RunShape NemotronH::run_shape() const {
  detail::RunShape rs;
  rs.batch = batch_.batch, rs.seq = batch_.seq, rs.rows = batch_.batch * batch_.seq;
  rs.doc = batch_.doc_ids.empty() ? nullptr : batch_.doc_ids.data();
  rs.pad = batch_.pad.empty() ? nullptr : batch_.pad.data();
  rs.training = run_training_;  // router statistics come from training steps only
  rs.aux_coeff = run_opts_.moe_aux_loss_coeff;
  rs.grad_scale = run_opts_.grad_scale;
  rs.lora = {run_dropout_, run_lora_counter_};
  rs.grad_flush = &grad_flush_;
  return rs;
}

void NemotronH::backbone_forward(const Batch& batch, const LossOptions& opts, bool training) {
  const auto& c = config_;
  batch.validate(c.vocab_size);
  batch_ = batch;
  run_opts_ = opts;
  run_training_ = training;
  run_dropout_ = training && lora_ && lora_->dropout > 0;
  run_lora_counter_ = lora_counter_;
  if (run_dropout_) ++lora_counter_;
  const detail::RunShape rs = run_shape();
  const int64_t R = rs.rows, d = c.hidden_size, V = c.vocab_size;

  const size_t L = blocks_.size();
  residual_.resize(L + 1);
  residual_[0].resize(R * d);
  k::embedding_forward(residual_[0].data(), batch_.input_ids.data(), embedding_->value.f32(), R, V, d);
  media_forward(training);
  std::vector<float>& mixed = scratch_[0];
  mixed.resize(R * d);
  for (size_t l = 0; l < L; ++l) {
    auto& b = *blocks_[l];
    b.normed.resize(R * d), b.rstd.resize(R);
    k::rmsnorm_forward(b.normed.data(), b.rstd.data(), residual_[l].data(), b.norm->value.f32(), R, d, d, c.layer_norm_epsilon);
    b.mixer->forward(rs, b.normed.data(), mixed.data());
    residual_[l + 1].resize(R * d);
    for (int64_t i = 0; i < R * d; ++i) residual_[l + 1][i] = residual_[l][i] + mixed[i];
  }
  final_normed_.resize(R * d), final_rstd_.resize(R);
  k::rmsnorm_forward(final_normed_.data(), final_rstd_.data(), residual_[L].data(), norm_f_->value.f32(), R, d, d,
                     c.layer_norm_epsilon);
}

void NemotronH::backbone_backward(const float* grad_final) {
  const detail::RunShape rs = run_shape();
  const int64_t R = rs.rows, d = config_.hidden_size;
  const size_t L = blocks_.size();
  auto &dh = scratch_[2], &dn = scratch_[3];
  dh.assign(R * d, 0.0f), dn.resize(R * d);
  k::rmsnorm_backward(dh.data(), norm_f_->trainable ? norm_f_->grad.f32() : nullptr, grad_final, residual_[L].data(),
                      norm_f_->value.f32(), final_rstd_.data(), R, d, d);
  for (size_t l = L; l-- > 0;) {
    auto& b = *blocks_[l];
    std::fill(dn.begin(), dn.end(), 0.0f);
    b.mixer->backward(rs, b.normed.data(), dh.data(), dn.data());
    k::rmsnorm_backward(dh.data(), b.norm->trainable ? b.norm->grad.f32() : nullptr, dn.data(), residual_[l].data(),
                        b.norm->value.f32(), b.rstd.data(), R, d, d);
  }
  media_backward(dh);
  if (embedding_->trainable) k::embedding_backward(embedding_->grad.f32(), dh.data(), batch_.input_ids.data(), R, d);
}

const std::vector<float>& NemotronH::forward_hidden(const Batch& batch, bool training) {
  backbone_forward(batch, LossOptions{}, training);
  return final_normed_;
}

void NemotronH::backward_hidden(const float* grad_hidden) { backbone_backward(grad_hidden); }

StepResult NemotronH::forward_backward(const Batch& batch, const LossOptions& opts, bool backward) {
  backbone_forward(batch, opts, backward);
  const int64_t R = batch_.batch * batch_.seq, d = config_.hidden_size, V = config_.vocab_size;
  if (!logits_.defined() || logits_.numel() != R * V) logits_ = Tensor::empty({R, V});
  logits_ = logits_.view({R, V});
  k::linear_forward(logits_.f32(), final_normed_.data(), lm_head_->value.f32(), R, d, V);

  StepResult result;
  if (batch_.targets.empty()) return result;
  for (int32_t t : batch_.targets) result.tokens += t >= 0;
  const bool weighted = !batch_.loss_weights.empty();
  const float norm = opts.mean && !weighted ? 1.0f / float(std::max<int64_t>(1, result.tokens)) : 1.0f;
  token_losses_.assign(R, 0.0f);
  // Kept between steps: a fresh 4-byte * rows * vocab buffer per step costs page faults.
  std::vector<float>& dlogits = grad_logits_;
  dlogits.resize(backward ? R * V : 0);  // cross_entropy writes every element
  result.loss_sum =
      k::cross_entropy(logits_.f32(), batch_.targets.data(), R, V, token_losses_.data(), backward ? dlogits.data() : nullptr,
                       norm * opts.grad_scale, weighted ? batch_.loss_weights.data() : nullptr);
  double objective = result.loss_sum * norm;
  if (weighted) {
    objective = 0;
    for (int64_t r = 0; r < R; ++r) objective += double(batch_.loss_weights[r]) * token_losses_[r];
  }
  // MTP depths run after the main head: they read its input, final_normed_.
  if (mtp_) result.mtp_loss = mtp_->forward(run_shape(), batch_, final_normed_.data(), embedding_, lm_head_, opts, backward);
  for (auto* b : all_blocks()) result.aux_loss += b->mixer->aux_loss();
  result.loss = float(objective + result.aux_loss + result.mtp_loss);
  if (!backward) return result;

  // Backward through the head, then the final norm, blocks and embedding.
  auto& dfinal = scratch_[1];
  dfinal.assign(R * d, 0.0f);
  k::linear_backward(dfinal.data(), lm_head_->trainable ? lm_head_->grad.f32() : nullptr, dlogits.data(), final_normed_.data(),
                     lm_head_->value.f32(), R, d, V);
  if (mtp_) mtp_->backward(run_shape(), embedding_, dfinal.data());
  backbone_backward(dfinal.data());
  return result;
}

std::vector<detail::Block*> NemotronH::all_blocks() const {
  std::vector<detail::Block*> out;
  for (auto& b : blocks_) out.push_back(b.get());
  if (mtp_)
    for (auto* b : mtp_->blocks()) out.push_back(b);
  return out;
}

void NemotronH::update_expert_bias(float rate) {
  for (auto* b : all_blocks()) {
    auto stats = detail::moe_stats(*b->mixer);
    if (!stats.counts) continue;
    auto& counts = *stats.counts;
    double mean = 0;
    for (int64_t cnt : counts) mean += double(cnt);
    mean /= double(counts.size());
    float* bias = stats.bias->value.f32();
    for (size_t e = 0; e < counts.size(); ++e) {
      double diff = mean - double(counts[e]);
      bias[e] += rate * float((diff > 0) - (diff < 0));
      counts[e] = 0;
    }
  }
}

std::vector<std::vector<int64_t>> NemotronH::expert_load() const {
  std::vector<std::vector<int64_t>> out;
  for (auto* b : all_blocks()) {
    auto stats = detail::moe_stats(*b->mixer);
    if (stats.counts) out.push_back(*stats.counts);
  }
  return out;
}

void NemotronH::set_expert_load(const std::vector<std::vector<int64_t>>& load) {
  size_t layer = 0;
  for (auto* b : all_blocks()) {
    auto stats = detail::moe_stats(*b->mixer);
    if (!stats.counts) continue;
    if (layer >= load.size() || load[layer].size() != stats.counts->size())
      throw std::invalid_argument("set_expert_load: the counts do not match the model's MoE layers");
    *stats.counts = load[layer++];
  }
  if (layer != load.size()) throw std::invalid_argument("set_expert_load: more layers of counts than the model has MoE layers");
}

SequenceCache NemotronH::new_cache() const {
  SequenceCache cache;
  const size_t L = blocks_.size();
  cache.conv.resize(L), cache.ssm.resize(L), cache.keys.resize(L), cache.values.resize(L);
  for (auto& b : blocks_) b->mixer->init_cache(cache);
  return cache;
}

void NemotronH::decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches,
                            std::vector<float>& logits) {
  std::vector<int64_t> all(tokens.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  decode_step(tokens, caches, logits, all);
}

void NemotronH::decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches,
                            std::vector<float>& logits, const std::vector<int64_t>& want) {
  decode_step(tokens, caches, logits, want, {});
}

void NemotronH::decode_step(const std::vector<int32_t>& tokens, const std::vector<SequenceCache*>& caches,
                            std::vector<float>& logits, const std::vector<int64_t>& want,
                            const std::vector<const float*>& embeddings) {
  const auto& c = config_;
  const int64_t n = int64_t(tokens.size()), d = c.hidden_size, V = c.vocab_size;
  if (caches.size() != tokens.size()) throw std::invalid_argument("decode_step: one cache per token required");
  for (size_t j = 0; j < want.size(); ++j)
    if (want[j] < 0 || want[j] >= n || (j > 0 && want[j] <= want[j - 1]))
      throw std::invalid_argument("decode_step: logit rows must be ascending row indices");
  std::vector<float> h(n * d), normed(n * d), rstd(n), mixed(n * d);
  k::embedding_forward(h.data(), tokens.data(), embedding_->value.f32(), n, V, d);
  if (!embeddings.empty()) {
    if (int64_t(embeddings.size()) != n) throw std::invalid_argument("decode_step: one embedding entry per token required");
    for (int64_t i = 0; i < n; ++i)
      if (embeddings[i]) std::memcpy(h.data() + i * d, embeddings[i], sizeof(float) * d);
  }
  for (auto& b : blocks_) {
    k::rmsnorm_forward(normed.data(), rstd.data(), h.data(), b->norm->value.f32(), n, d, d, c.layer_norm_epsilon);
    b->mixer->step(normed.data(), mixed.data(), n, caches);
    for (int64_t i = 0; i < n * d; ++i) h[i] += mixed[i];
  }
  k::rmsnorm_forward(normed.data(), rstd.data(), h.data(), norm_f_->value.f32(), n, d, d, c.layer_norm_epsilon);
  const int64_t m = int64_t(want.size());
  const float* rows = normed.data();
  if (m < n) {  // pack the wanted rows (in place: want is ascending, so row want[j] >= j)
    for (int64_t j = 0; j < m; ++j)
      if (want[j] != j) std::memcpy(normed.data() + j * d, normed.data() + want[j] * d, sizeof(float) * d);
  }
  logits.resize(m * V);
  k::linear_forward(logits.data(), rows, lm_head_->value.f32(), m, d, V);
  for (auto* cache : caches) ++cache->length;
}

}  // namespace nemokit::rt
