// Mixture of experts as Nemotron-H routes it: sigmoid scores, top-k chosen by score +
// e_score_correction_bias (the bias steers selection only), selected scores normalized and
// multiplied by routed_scaling_factor, squared-ReLU experts, plus a shared expert.
// LatentMoE (moe_latent_size, Nemotron 3 Super; transformers' NemotronHMoE, TensorRT-LLM's
// NemotronHMOE): the router and the shared expert read x at hidden width, while the routed
// experts work on fc1_latent_proj(x) in the latent width; their weighted sum goes back
// through fc2_latent_proj. fc2 is linear, so summing in latent space and projecting once is
// the same as projecting each expert's output.
// Tokens are dispatched per expert in token order and combined serially, so results do not
// depend on the thread count.
// Expert parallel (ExpertShard with groups of several ranks): this rank creates only its block
// of the routed experts; rows travel to their experts' ranks in the group and back
// (expert_exchange.hpp). The owner runs an expert on each source rank's rows apart, through one
// view of the expert per source rank (the same weights, its own activations for the backward),
// and hands each source's weight gradients to the gradient flush: the products, their shapes
// and the double sums are those of one rank running the same micro-batches, so expert parallel
// trains as one rank does to the bit (but for the order of the double sums).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "expert_exchange.hpp"
#include "mixers.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

class MoeMixer : public Mixer {
 public:
  MoeMixer(const NemotronHConfig& c, const std::string& p, const ParamFactory& add, const ExpertShard& shard)
      : d_(c.hidden_size),
        dl_(c.moe_latent_size > 0 ? c.moe_latent_size : c.hidden_size),
        E_(c.n_routed_experts),
        topk_(c.num_experts_per_tok),
        scale_(c.routed_scaling_factor),
        norm_topk_(c.norm_topk_prob),
        counts_(c.n_routed_experts, 0) {
    gate_ = add(p + "gate.weight", {E_, d_}, true);
    bias_ = add(p + "gate.e_score_correction_bias", {E_}, false);
    bias_->buffer = true;
    bias_->trainable = false;
    NemotronHConfig expert_shape = c;  // experts are MLPs of the latent width
    expert_shape.hidden_size = dl_;
    if (shard.comm && shard.group > 1) exchange_ = std::make_unique<ExpertExchange>(*shard.comm, E_, dl_, shard.group);
    for (int64_t e = 0; e < E_; ++e) {
      const std::string ep = p + "experts." + std::to_string(e) + ".";
      if (!holds(e)) {
        // Held by another rank: only its place in the checkpoint layout (MlpMixer's tensors).
        shard.remote(ep + "up_proj.weight", {c.moe_intermediate_size, dl_}, exchange_->owner(e));
        shard.remote(ep + "down_proj.weight", {dl_, c.moe_intermediate_size}, exchange_->owner(e));
        continue;
      }
      experts_.push_back(make_mlp(expert_shape, ep, c.moe_intermediate_size, add));
      if (!exchange_) continue;
      std::vector<Linear*> lin;
      experts_.back()->linears(lin);
      std::vector<Parameter*> own;
      for (Linear* l : lin) own.push_back(l->weight()), l->weight()->expert_shard = true;
      expert_params_.push_back(own);
      // One view per other source rank: the same Parameters (found by name), other activations.
      ParamFactory same = [&own](const std::string& name, std::vector<int64_t>, bool) {
        for (Parameter* q : own)
          if (q->name == name) return q;
        throw std::logic_error("expert view: no parameter " + name);
      };
      std::vector<std::unique_ptr<Mixer>> views;
      for (int s = 1; s < exchange_->ranks(); ++s) views.push_back(make_mlp(expert_shape, ep, c.moe_intermediate_size, same));
      views_.push_back(std::move(views));
    }
    if (c.moe_shared_expert_intermediate_size > 0)
      shared_ = make_mlp(c, p + "shared_experts.", c.moe_shared_expert_intermediate_size, add);
    // Created after the experts and shared expert, as transformers registers them.
    if (c.moe_latent_size > 0) {
      fc1_ = std::make_unique<Linear>(add(p + "fc1_latent_proj.weight", {dl_, d_}, true));
      fc2_ = std::make_unique<Linear>(add(p + "fc2_latent_proj.weight", {d_, dl_}, true));
    }
  }

  void init(Rng& rng, const NemotronHConfig& c) override {
    fill_normal(gate_->value, rng, c.initializer_range);
    fill_value(bias_->value, 0.0f);
    for (int64_t e = 0, j = 0; e < E_; ++e) {
      if (holds(e)) {
        experts_[j++]->init(rng, c);
        continue;
      }
      // Another rank's expert: the draws MlpMixer::init makes (up, then down), so that every
      // expert gets the weights it has on one rank.
      for (auto shape :
           {std::vector<int64_t>{c.moe_intermediate_size, dl_}, std::vector<int64_t>{dl_, c.moe_intermediate_size}}) {
        Tensor skip = Tensor::empty(shape);
        fill_normal(skip, rng, c.initializer_range);
      }
    }
    if (shared_) shared_->init(rng, c);
    if (fc1_) fill_normal(fc1_->weight()->value, rng, c.initializer_range);
    if (fc2_) fill_normal(fc2_->weight()->value, rng, c.initializer_range);
  }

  void forward(const RunShape& rs, const float* x, float* y) override {
    const int64_t R = rs.rows;
    route(x, R);
    // The experts' input and their weighted sum: x and y themselves without a latent space.
    const float* xe = x;
    float* z = y;
    if (fc1_) {
      latent_in_.resize(R * dl_), latent_sum_.resize(R * dl_);
      fc1_->forward(latent_in_.data(), x, R, rs.lora);
      xe = latent_in_.data(), z = latent_sum_.data();
    }
    std::memset(z, 0, sizeof(float) * R * dl_);
    if (exchange_) forward_parallel(rs, xe, z);
    for (int64_t e = 0; e < E_ && !exchange_; ++e) {
      auto& ex = dispatch_[e];
      if (ex.rows.empty()) continue;
      const int64_t n = int64_t(ex.rows.size());
      ex.input.resize(n * dl_), ex.output.resize(n * dl_);
      for (int64_t i = 0; i < n; ++i) std::memcpy(&ex.input[i * dl_], xe + ex.rows[i] * dl_, sizeof(float) * dl_);
      RunShape sub;
      sub.batch = 1, sub.seq = n, sub.rows = n, sub.training = rs.training, sub.lora = rs.lora;
      experts_[e]->forward(sub, ex.input.data(), ex.output.data());
      for (int64_t i = 0; i < n; ++i) {
        float w = weights_[ex.rows[i] * topk_ + ex.slots[i]];
        float* zr = z + ex.rows[i] * dl_;
        for (int64_t c = 0; c < dl_; ++c) zr[c] += w * ex.output[i * dl_ + c];
      }
    }
    if (fc2_) fc2_->forward(y, latent_sum_.data(), R, rs.lora);
    if (shared_) {
      shared_out_.resize(R * d_);
      shared_->forward(rs, x, shared_out_.data());
      for (int64_t i = 0; i < R * d_; ++i) y[i] += shared_out_[i];
    }
    aux_ = 0;
    if (rs.training) {
      for (int64_t r = 0; r < R; ++r)
        if (!rs.pad || !rs.pad[r])
          for (int64_t j = 0; j < topk_; ++j) ++counts_[topk_idx_[r * topk_ + j]];
      if (rs.aux_coeff > 0) aux_ = aux_loss_value(rs);
    }
  }

  void backward(const RunShape& rs, const float* x, const float* dy, float* dx) override {
    const int64_t R = rs.rows;
    if (shared_) shared_->backward(rs, x, dy, dx);
    // dz: the gradient of the experts' weighted sum; dxe: of the experts' input.
    const float* dz = dy;
    float* dxe = dx;
    if (fc2_) {
      dlatent_sum_.assign(R * dl_, 0.0f), dlatent_in_.assign(R * dl_, 0.0f);
      fc2_->backward(dlatent_sum_.data(), dy, latent_sum_.data(), R);
      dz = dlatent_sum_.data(), dxe = dlatent_in_.data();
    }
    std::vector<float> dweights(R * topk_, 0.0f);
    if (exchange_) backward_parallel(rs, dz, dxe, dweights);
    for (int64_t e = 0; e < E_ && !exchange_; ++e) {
      auto& ex = dispatch_[e];
      if (ex.rows.empty()) continue;
      const int64_t n = int64_t(ex.rows.size());
      std::vector<float> dout(n * dl_), dinput(n * dl_, 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t r = ex.rows[i];
        float w = weights_[r * topk_ + ex.slots[i]];
        float dw = 0;
        for (int64_t c = 0; c < dl_; ++c) {
          dout[i * dl_ + c] = w * dz[r * dl_ + c];
          dw += dz[r * dl_ + c] * ex.output[i * dl_ + c];
        }
        dweights[r * topk_ + ex.slots[i]] = dw;
      }
      RunShape sub;
      sub.batch = 1, sub.seq = n, sub.rows = n;
      experts_[e]->backward(sub, ex.input.data(), dout.data(), dinput.data());
      for (int64_t i = 0; i < n; ++i) {
        float* dxr = dxe + ex.rows[i] * dl_;
        for (int64_t c = 0; c < dl_; ++c) dxr[c] += dinput[i * dl_ + c];
      }
    }
    if (fc1_) fc1_->backward(dx, dlatent_in_.data(), x, R);
    // Through the weight normalization and the sigmoid to the router logits.
    std::vector<float> dlogits(R * E_, 0.0f);
    for (int64_t r = 0; r < R; ++r) {
      const float* s = scores_.data() + r * E_;
      float* ds = dlogits.data() + r * E_;
      if (norm_topk_) {
        double S = 1e-20, dot = 0;
        for (int64_t j = 0; j < topk_; ++j) S += s[topk_idx_[r * topk_ + j]];
        for (int64_t j = 0; j < topk_; ++j) dot += double(dweights[r * topk_ + j]) * s[topk_idx_[r * topk_ + j]];
        for (int64_t j = 0; j < topk_; ++j)
          ds[topk_idx_[r * topk_ + j]] += float(scale_ * (dweights[r * topk_ + j] / S - dot / (S * S)));
      } else {
        for (int64_t j = 0; j < topk_; ++j) ds[topk_idx_[r * topk_ + j]] += scale_ * dweights[r * topk_ + j];
      }
    }
    if (rs.aux_coeff > 0) aux_loss_grad(rs, dlogits);
    for (int64_t i = 0; i < R * E_; ++i) dlogits[i] *= scores_[i] * (1.0f - scores_[i]);
    k::linear_backward(dx, gate_->trainable ? gate_->grad.f32() : nullptr, dlogits.data(), x, gate_->value.f32(), R, d_, E_);
  }

  void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>&) override {
    RunShape rs;
    rs.batch = n, rs.seq = 1, rs.rows = n, rs.training = false;
    forward(rs, x, y);
  }

  float aux_loss() const override { return aux_; }
  void linears(std::vector<Linear*>& out) override {
    for (auto& e : experts_) e->linears(out);
    if (shared_) shared_->linears(out);
    if (fc1_) out.push_back(fc1_.get());
    if (fc2_) out.push_back(fc2_.get());
  }
  std::vector<int64_t>& counts() { return counts_; }
  Parameter* bias() { return bias_; }

 private:
  struct Dispatch {
    std::vector<int64_t> rows, slots;
    std::vector<float> input, output;
  };

  // The forward's expert part under expert parallel: this rank's rows to their experts' ranks,
  // this rank's experts over every source's rows, the results back, combined as one rank does.
  void forward_parallel(const RunShape& rs, const float* xe, float* z) {
    std::vector<int64_t> rows(E_);
    for (int64_t e = 0; e < E_; ++e) rows[e] = int64_t(dispatch_[e].rows.size());
    exchange_->exchange_counts(rows);
    send_.resize(exchange_->sent_rows() * dl_);
    for (int64_t e = 0, at = 0; e < E_; ++e)
      for (int64_t r : dispatch_[e].rows) std::memcpy(&send_[(at++) * dl_], xe + r * dl_, sizeof(float) * dl_);
    exchange_->to_owners(send_.data(), owned_in_);
    owned_out_.resize(owned_in_.size());
    for_each_source([&](int64_t j, int s, int64_t at,
                        const RunShape& sub) { expert_view(j, s).forward(sub, &owned_in_[at * dl_], &owned_out_[at * dl_]); },
                    rs);
    exchange_->to_sources(owned_out_.data(), returned_);
    for (int64_t e = 0, at = 0; e < E_; ++e)
      for (size_t i = 0; i < dispatch_[e].rows.size(); ++i, ++at) {
        const float w = weights_[dispatch_[e].rows[i] * topk_ + dispatch_[e].slots[i]];
        float* zr = z + dispatch_[e].rows[i] * dl_;
        for (int64_t c = 0; c < dl_; ++c) zr[c] += w * returned_[at * dl_ + c];
      }
  }

  // The backward's expert part under expert parallel: the rows' output gradients go to their
  // experts' ranks, the input gradients come back; each source's weight gradients are flushed.
  void backward_parallel(const RunShape& rs, const float* dz, float* dxe, std::vector<float>& dweights) {
    send_.resize(exchange_->sent_rows() * dl_);
    for (int64_t e = 0, at = 0; e < E_; ++e)
      for (size_t i = 0; i < dispatch_[e].rows.size(); ++i, ++at) {
        const int64_t r = dispatch_[e].rows[i];
        const float w = weights_[r * topk_ + dispatch_[e].slots[i]];
        float dw = 0;
        for (int64_t c = 0; c < dl_; ++c) {
          send_[at * dl_ + c] = w * dz[r * dl_ + c];
          dw += dz[r * dl_ + c] * returned_[at * dl_ + c];
        }
        dweights[r * topk_ + dispatch_[e].slots[i]] = dw;
      }
    exchange_->to_owners(send_.data(), owned_dout_);
    owned_din_.assign(owned_in_.size(), 0.0f);
    const bool flush = rs.grad_flush && *rs.grad_flush;
    for_each_source(
        [&](int64_t j, int s, int64_t at, const RunShape& sub) {
          expert_view(j, s).backward(sub, &owned_in_[at * dl_], &owned_dout_[at * dl_], &owned_din_[at * dl_]);
          if (flush) (*rs.grad_flush)(expert_params_[j]);
        },
        rs);
    exchange_->to_sources(owned_din_.data(), returned_din_);
    for (int64_t e = 0, at = 0; e < E_; ++e)
      for (size_t i = 0; i < dispatch_[e].rows.size(); ++i, ++at) {
        float* dxr = dxe + dispatch_[e].rows[i] * dl_;
        for (int64_t c = 0; c < dl_; ++c) dxr[c] += returned_din_[at * dl_ + c];
      }
  }

  // fn(local expert, source rank, first owner-side row, run shape) for every source's rows.
  template <class Fn>
  void for_each_source(Fn&& fn, const RunShape& rs) {
    for (int64_t j = 0; j < exchange_->local_experts(); ++j)
      for (int s = 0; s < exchange_->ranks(); ++s) {
        const int64_t n = exchange_->received(j, s);
        if (!n) continue;
        RunShape sub;
        sub.batch = 1, sub.seq = n, sub.rows = n, sub.training = rs.training, sub.lora = rs.lora;
        fn(j, s, exchange_->owner_offset(j, s), sub);
      }
  }

  bool holds(int64_t e) const { return !exchange_ || exchange_->owner(e) == exchange_->position(); }
  Mixer& expert_view(int64_t j, int s) { return s == 0 ? *experts_[j] : *views_[j][s - 1]; }

  void route(const float* x, int64_t R) {
    scores_.resize(R * E_);
    weights_.resize(R * topk_);
    topk_idx_.resize(R * topk_);
    k::linear_forward(scores_.data(), x, gate_->value.f32(), R, d_, E_);
    const float* bias = bias_->value.f32();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      std::vector<int64_t> order(E_);
      for (int64_t r = r0; r < r1; ++r) {
        float* s = scores_.data() + r * E_;
        for (int64_t e = 0; e < E_; ++e) s[e] = 1.0f / (1.0f + std::exp(-s[e]));
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + topk_, order.end(), [&](int64_t a, int64_t b) {
          float va = s[a] + bias[a], vb = s[b] + bias[b];
          return va > vb || (va == vb && a < b);
        });
        float denom = 1e-20f;
        for (int64_t j = 0; j < topk_; ++j) denom += s[order[j]];
        for (int64_t j = 0; j < topk_; ++j) {
          topk_idx_[r * topk_ + j] = int32_t(order[j]);
          weights_[r * topk_ + j] = (norm_topk_ ? s[order[j]] / denom : s[order[j]]) * scale_;
        }
      }
    });
    dispatch_.assign(E_, {});
    for (int64_t r = 0; r < R; ++r)
      for (int64_t j = 0; j < topk_; ++j) {
        dispatch_[topk_idx_[r * topk_ + j]].rows.push_back(r);
        dispatch_[topk_idx_[r * topk_ + j]].slots.push_back(j);
      }
  }

  // Switch-style balance loss over non-pad tokens: coeff * E * sum_i f_i P_i with f_i the
  // fraction of routed slots taken by expert i and P_i the mean normalized score.
  float aux_loss_value(const RunShape& rs) {
    aux_f_.assign(E_, 0.0);
    std::vector<double> P(E_, 0.0);
    int64_t tokens = 0;
    for (int64_t r = 0; r < rs.rows; ++r) {
      if (rs.pad && rs.pad[r]) continue;
      ++tokens;
      for (int64_t j = 0; j < topk_; ++j) aux_f_[topk_idx_[r * topk_ + j]] += 1.0;
      double sum = 0;
      for (int64_t e = 0; e < E_; ++e) sum += scores_[r * E_ + e];
      for (int64_t e = 0; e < E_; ++e) P[e] += scores_[r * E_ + e] / sum;
    }
    aux_tokens_ = tokens;
    if (!tokens) return 0;
    double loss = 0;
    for (int64_t e = 0; e < E_; ++e) {
      aux_f_[e] /= double(tokens * topk_);
      loss += aux_f_[e] * P[e] / double(tokens);
    }
    return float(rs.aux_coeff * E_ * loss);
  }

  void aux_loss_grad(const RunShape& rs, std::vector<float>& dscores) {
    if (!aux_tokens_) return;
    const double c = double(rs.aux_coeff) * E_ / double(aux_tokens_) * rs.grad_scale;
    for (int64_t r = 0; r < rs.rows; ++r) {
      if (rs.pad && rs.pad[r]) continue;
      const float* s = scores_.data() + r * E_;
      double sum = 0, fs = 0;
      for (int64_t e = 0; e < E_; ++e) sum += s[e], fs += aux_f_[e] * s[e];
      for (int64_t e = 0; e < E_; ++e) dscores[r * E_ + e] += float(c * (aux_f_[e] / sum - fs / (sum * sum)));
    }
  }

  int64_t d_, dl_, E_, topk_;  // dl_: the experts' width (moe_latent_size, else hidden)
  float scale_;
  bool norm_topk_;
  Parameter *gate_, *bias_;
  std::vector<std::unique_ptr<Mixer>> experts_;  // this rank's: all, or its block under expert parallel
  // Expert parallel: the exchange, each local expert's parameters and its views for source ranks
  // 1.. (view 0 is the expert itself), and the rows of the last forward and backward.
  std::unique_ptr<ExpertExchange> exchange_;
  std::vector<std::vector<Parameter*>> expert_params_;
  std::vector<std::vector<std::unique_ptr<Mixer>>> views_;
  std::vector<float> send_, owned_in_, owned_out_, owned_dout_, owned_din_, returned_, returned_din_;
  std::unique_ptr<Mixer> shared_;
  std::unique_ptr<Linear> fc1_, fc2_;  // latent projections (LatentMoE only)
  std::vector<float> latent_in_, latent_sum_, dlatent_in_, dlatent_sum_;
  std::vector<float> scores_, weights_, shared_out_;
  std::vector<int32_t> topk_idx_;
  std::vector<Dispatch> dispatch_;
  std::vector<int64_t> counts_;
  std::vector<double> aux_f_;
  int64_t aux_tokens_ = 0;
  float aux_ = 0;
};

std::unique_ptr<Mixer> make_moe(const NemotronHConfig& c, const std::string& prefix, const ParamFactory& add,
                                const ExpertShard& shard) {
  return std::make_unique<MoeMixer>(c, prefix, add, shard);
}

MoeStats moe_stats(Mixer& mixer) {
  if (auto* m = dynamic_cast<MoeMixer*>(&mixer)) return {&m->counts(), m->bias()};
  return {nullptr, nullptr};
}

}  // namespace nemokit::rt::detail
