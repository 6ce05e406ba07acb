// Multi-token prediction layers: forward, loss and backward (see mtp.hpp for the scheme).
#include "mtp.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "nemokit/runtime/kernels.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

namespace {
float* grad_of(Parameter* p) { return p->trainable && p->grad.defined() ? p->grad.f32() : nullptr; }
}  // namespace

// One prediction depth: its parameters and the activations of the last forward.
struct Mtp::Depth {
  int shift = 1;  // predicts the token shift+1 places ahead from the embedding `shift` ahead
  Parameter *enorm = nullptr, *hnorm = nullptr, *final_norm = nullptr;
  std::unique_ptr<Linear> eh_proj;  // [hidden, 2*hidden]
  std::vector<std::unique_ptr<Block>> blocks;

  std::vector<int32_t> ids, targets;  // shifted inputs and targets (-1: no target)
  std::vector<float> weights;         // shifted loss weights (weighted batches only)
  const float* hidden_in = nullptr;   // h^{k-1}
  std::vector<float> emb, en, en_rstd, hn, hn_rstd, cat;
  std::vector<std::vector<float>> residual;  // input of each layer, plus the last layer's output
  std::vector<float> out, out_rstd, dout;    // h^k and the gradient of the loss on it
};

Mtp::Mtp(const NemotronHConfig& c, const ParamFactory& add, const ExpertShard& shard)
    : d_(c.hidden_size), V_(c.vocab_size), eps_(c.layer_norm_epsilon) {
  const int64_t P = int64_t(c.mtp_pattern.size());
  for (int64_t depth = 0; depth < c.num_nextn_predict_layers; ++depth) {
    auto dp = std::make_unique<Depth>();
    dp->shift = int(depth + 1);
    for (int64_t j = 0; j < P; ++j) {
      const std::string p = "mtp.layers." + std::to_string(depth * P + j) + ".";
      if (j == 0) {
        dp->enorm = add(p + "enorm.weight", {d_}, false);
        dp->hnorm = add(p + "hnorm.weight", {d_}, false);
        dp->eh_proj = std::make_unique<Linear>(add(p + "eh_proj.weight", {d_, 2 * d_}, true));
      }
      Parameter* norm = add(p + "norm.weight", {d_}, false);
      std::unique_ptr<Mixer> mixer;
      switch (c.mtp_pattern[j]) {
        case '*':
          mixer = make_mtp_attention(c, p + "mixer.", add);
          break;
        case '-':
          mixer = make_mlp(c, p + "mixer.", c.intermediate_size, add);
          break;
        case 'E':
          mixer = make_moe(c, p + "mixer.", add, shard);
          break;
      }
      dp->blocks.push_back(std::make_unique<Block>(norm, std::move(mixer)));
      if (j == P - 1) dp->final_norm = add(p + "final_layernorm.weight", {d_}, false);
    }
    depths_.push_back(std::move(dp));
  }
}

Mtp::~Mtp() = default;

void Mtp::init(Rng& rng, const NemotronHConfig& c) {
  for (auto& dp : depths_) {
    fill_value(dp->enorm->value, 1.0f);
    fill_value(dp->hnorm->value, 1.0f);
    fill_normal(dp->eh_proj->weight()->value, rng, c.initializer_range);
    for (auto& b : dp->blocks) {
      fill_value(b->norm->value, 1.0f);
      b->mixer->init(rng, c);
    }
    fill_value(dp->final_norm->value, 1.0f);
  }
}

double Mtp::forward(const RunShape& rs, const Batch& batch, const float* hidden, Parameter* embedding, Parameter* lm_head,
                    const LossOptions& opts, bool backward) {
  const int64_t R = rs.rows, S = rs.seq, d = d_, V = V_;
  const bool weighted = !batch.loss_weights.empty();
  const float depth_scale = opts.mtp_loss_scale / float(depths_.size());
  double total = 0;
  const float* h_prev = hidden;
  for (auto& dpp : depths_) {
    Depth& dp = *dpp;
    // Shift within each row; a target across a document start belongs to another document.
    dp.ids.assign(R, 0), dp.targets.assign(R, -1), dp.weights.assign(weighted ? R : 0, 0.0f);
    int64_t tokens = 0;
    for (int64_t b = 0; b < rs.batch; ++b)
      for (int64_t t = 0; t + dp.shift < S; ++t) {
        const int64_t r = b * S + t, src = r + dp.shift;
        if (rs.doc && rs.doc[src] != rs.doc[r]) continue;
        dp.ids[r] = batch.input_ids[src];
        dp.targets[r] = batch.targets[src];
        if (weighted) dp.weights[r] = batch.loss_weights[src];
        tokens += dp.targets[r] >= 0;
      }

    // h0 = eh_proj([enorm(embedding), hnorm(h_prev)])
    dp.hidden_in = h_prev;
    dp.emb.resize(R * d), dp.en.resize(R * d), dp.hn.resize(R * d), dp.cat.resize(R * 2 * d);
    dp.en_rstd.resize(R), dp.hn_rstd.resize(R);
    k::embedding_forward(dp.emb.data(), dp.ids.data(), embedding->value.f32(), R, V, d);
    k::rmsnorm_forward(dp.en.data(), dp.en_rstd.data(), dp.emb.data(), dp.enorm->value.f32(), R, d, d, eps_);
    k::rmsnorm_forward(dp.hn.data(), dp.hn_rstd.data(), h_prev, dp.hnorm->value.f32(), R, d, d, eps_);
    for (int64_t r = 0; r < R; ++r) {
      std::memcpy(&dp.cat[r * 2 * d], &dp.en[r * d], sizeof(float) * d);
      std::memcpy(&dp.cat[r * 2 * d + d], &dp.hn[r * d], sizeof(float) * d);
    }
    const size_t L = dp.blocks.size();
    dp.residual.resize(L + 1);
    dp.residual[0].resize(R * d);
    dp.eh_proj->forward(dp.residual[0].data(), dp.cat.data(), R, rs.lora);

    std::vector<float> mixed(R * d);
    for (size_t l = 0; l < L; ++l) {
      Block& b = *dp.blocks[l];
      b.normed.resize(R * d), b.rstd.resize(R);
      k::rmsnorm_forward(b.normed.data(), b.rstd.data(), dp.residual[l].data(), b.norm->value.f32(), R, d, d, eps_);
      b.mixer->forward(rs, b.normed.data(), mixed.data());
      dp.residual[l + 1].resize(R * d);
      for (int64_t i = 0; i < R * d; ++i) dp.residual[l + 1][i] = dp.residual[l][i] + mixed[i];
    }
    dp.out.resize(R * d), dp.out_rstd.resize(R);
    k::rmsnorm_forward(dp.out.data(), dp.out_rstd.data(), dp.residual[L].data(), dp.final_norm->value.f32(), R, d, d, eps_);

    // The shared head; its gradient is taken here, so no depth keeps [rows, vocab] logits.
    logits_.resize(R * V), row_loss_.assign(R, 0.0f);
    k::linear_forward(logits_.data(), dp.out.data(), lm_head->value.f32(), R, d, V);
    const float norm = opts.mean && !weighted ? 1.0f / float(std::max<int64_t>(1, tokens)) : 1.0f;
    if (backward) dlogits_.resize(R * V);
    const double sum =
        k::cross_entropy(logits_.data(), dp.targets.data(), R, V, row_loss_.data(), backward ? dlogits_.data() : nullptr,
                         depth_scale * norm * opts.grad_scale, weighted ? dp.weights.data() : nullptr);
    double objective = sum * norm;
    if (weighted) {
      objective = 0;
      for (int64_t r = 0; r < R; ++r) objective += double(dp.weights[r]) * row_loss_[r];
    }
    total += depth_scale * objective;
    if (backward) {
      dp.dout.assign(R * d, 0.0f);
      k::linear_backward(dp.dout.data(), grad_of(lm_head), dlogits_.data(), dp.out.data(), lm_head->value.f32(), R, d, V);
    }
    h_prev = dp.out.data();
  }
  return total;
}

void Mtp::backward(const RunShape& rs, Parameter* embedding, float* dhidden) {
  const int64_t R = rs.rows, d = d_;
  std::vector<float> dh(R * d), dn(R * d), dcat(R * 2 * d), de(R * d), dhn(R * d), dprev(R * d);
  // From the last depth down: depth k's output feeds its head and depth k+1's hnorm.
  std::vector<float> carry;  // gradient on this depth's output from the next depth
  for (size_t i = depths_.size(); i-- > 0;) {
    Depth& dp = *depths_[i];
    if (!carry.empty())
      for (int64_t j = 0; j < R * d; ++j) dp.dout[j] += carry[j];
    std::fill(dh.begin(), dh.end(), 0.0f);
    const size_t L = dp.blocks.size();
    k::rmsnorm_backward(dh.data(), grad_of(dp.final_norm), dp.dout.data(), dp.residual[L].data(), dp.final_norm->value.f32(),
                        dp.out_rstd.data(), R, d, d);
    for (size_t l = L; l-- > 0;) {
      Block& b = *dp.blocks[l];
      std::fill(dn.begin(), dn.end(), 0.0f);
      b.mixer->backward(rs, b.normed.data(), dh.data(), dn.data());
      k::rmsnorm_backward(dh.data(), grad_of(b.norm), dn.data(), dp.residual[l].data(), b.norm->value.f32(), b.rstd.data(), R, d,
                          d);
    }
    std::fill(dcat.begin(), dcat.end(), 0.0f);
    dp.eh_proj->backward(dcat.data(), dh.data(), dp.cat.data(), R);
    for (int64_t r = 0; r < R; ++r) {
      std::memcpy(&dn[r * d], &dcat[r * 2 * d], sizeof(float) * d);
      std::memcpy(&dhn[r * d], &dcat[r * 2 * d + d], sizeof(float) * d);
    }
    std::fill(de.begin(), de.end(), 0.0f);
    k::rmsnorm_backward(de.data(), grad_of(dp.enorm), dn.data(), dp.emb.data(), dp.enorm->value.f32(), dp.en_rstd.data(), R, d,
                        d);
    if (float* g = grad_of(embedding)) k::embedding_backward(g, de.data(), dp.ids.data(), R, d);
    std::fill(dprev.begin(), dprev.end(), 0.0f);
    k::rmsnorm_backward(dprev.data(), grad_of(dp.hnorm), dhn.data(), dp.hidden_in, dp.hnorm->value.f32(), dp.hn_rstd.data(), R, d,
                        d);
    if (i == 0)
      for (int64_t j = 0; j < R * d; ++j) dhidden[j] += dprev[j];
    else
      carry = dprev;
  }
}

float Mtp::aux_loss() const {
  float sum = 0;
  for (auto& dp : depths_)
    for (auto& b : dp->blocks) sum += b->mixer->aux_loss();
  return sum;
}

std::vector<Block*> Mtp::blocks() {
  std::vector<Block*> out;
  for (auto& dp : depths_)
    for (auto& b : dp->blocks) out.push_back(b.get());
  return out;
}

}  // namespace nemokit::rt::detail
