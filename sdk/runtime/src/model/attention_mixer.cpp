// Causal GQA self-attention of Nemotron-H: q/k/v projections, no rotary embedding, softmax
// at scale head_dim^-0.5, o_proj.
#include <cmath>
#include <vector>

#include "mixers.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

class AttentionMixer : public Mixer {
 public:
  AttentionMixer(const NemotronHConfig& c, int layer, const ParamFactory& add)
      : d_(c.hidden_size), nh_(c.num_attention_heads), nkv_(c.num_key_value_heads), hd_(c.head_dim), layer_(layer) {
    std::string p = "backbone.layers." + std::to_string(layer) + ".mixer.";
    q_ = add(p + "q_proj.weight", {nh_ * hd_, d_}, true);
    k_ = add(p + "k_proj.weight", {nkv_ * hd_, d_}, true);
    v_ = add(p + "v_proj.weight", {nkv_ * hd_, d_}, true);
    o_ = add(p + "o_proj.weight", {d_, nh_ * hd_}, true);
  }

  void init(Rng& rng, const NemotronHConfig& c) override {
    for (Parameter* p : {q_, k_, v_, o_}) fill_normal(p->value, rng, c.initializer_range);
  }

  void forward(const RunShape& rs, const float* x, float* y) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_;
    q.resize(rs.rows * qd), kk.resize(rs.rows * kd), v.resize(rs.rows * kd), att.resize(rs.rows * qd);
    probs.resize(rs.batch * nh_ * rs.seq * rs.seq);
    k::linear_forward(q.data(), x, q_->value.f32(), rs.rows, d_, qd);
    k::linear_forward(kk.data(), x, k_->value.f32(), rs.rows, d_, kd);
    k::linear_forward(v.data(), x, v_->value.f32(), rs.rows, d_, kd);
    k::AttentionShape s{rs.batch, rs.seq, nh_, nkv_, hd_};
    k::attention_forward(s, q.data(), kk.data(), v.data(), rs.doc, att.data(), probs.data());
    k::linear_forward(y, att.data(), o_->value.f32(), rs.rows, qd, d_);
  }

  void backward(const RunShape& rs, const float* x, const float* dy, float* dx) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_;
    auto &datt = scratch_[0], &dq = scratch_[1], &dk = scratch_[2], &dv = scratch_[3];
    datt.assign(rs.rows * qd, 0.0f), dq.assign(rs.rows * qd, 0.0f), dk.assign(rs.rows * kd, 0.0f);
    dv.assign(rs.rows * kd, 0.0f);
    k::linear_backward(datt.data(), grad(o_), dy, att.data(), o_->value.f32(), rs.rows, qd, d_);
    k::AttentionShape s{rs.batch, rs.seq, nh_, nkv_, hd_};
    k::attention_backward(s, q.data(), kk.data(), v.data(), rs.doc, probs.data(), datt.data(), dq.data(),
                          dk.data(), dv.data());
    k::linear_backward(dx, grad(q_), dq.data(), x, q_->value.f32(), rs.rows, d_, qd);
    k::linear_backward(dx, grad(k_), dk.data(), x, k_->value.f32(), rs.rows, d_, kd);
    k::linear_backward(dx, grad(v_), dv.data(), x, v_->value.f32(), rs.rows, d_, kd);
  }

  // Appends this token's k/v to each sequence's cache and attends over the whole cache.
  void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>& caches) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_, rep = nh_ / nkv_;
    std::vector<float> qs(n * qd), ks(n * kd), vs(n * kd), out(n * qd);
    k::linear_forward(qs.data(), x, q_->value.f32(), n, d_, qd);
    k::linear_forward(ks.data(), x, k_->value.f32(), n, d_, kd);
    k::linear_forward(vs.data(), x, v_->value.f32(), n, d_, kd);
    for (int64_t i = 0; i < n; ++i) {
      auto& kc = caches[i]->keys[layer_];
      auto& vc = caches[i]->values[layer_];
      kc.insert(kc.end(), ks.begin() + i * kd, ks.begin() + (i + 1) * kd);
      vc.insert(vc.end(), vs.begin() + i * kd, vs.begin() + (i + 1) * kd);
    }
    const float scale = 1.0f / std::sqrt(float(hd_));
    parallel_for(n * nh_, [&](int64_t a, int64_t b) {
      std::vector<float> p;
      for (int64_t idx = a; idx < b; ++idx) {
        const int64_t i = idx / nh_, h = idx % nh_, kh = h / rep;
        const auto& kc = caches[i]->keys[layer_];
        const auto& vc = caches[i]->values[layer_];
        const int64_t L = int64_t(kc.size()) / kd;
        p.assign(L, 0.0f);
        const float* qr = qs.data() + i * qd + h * hd_;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; ++j) {
          float dot = 0;
          for (int64_t d = 0; d < hd_; ++d) dot += qr[d] * kc[j * kd + kh * hd_ + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
        float* o = out.data() + i * qd + h * hd_;
        for (int64_t d = 0; d < hd_; ++d) o[d] = 0;
        for (int64_t j = 0; j < L; ++j) {
          float w = p[j] / sum;
          for (int64_t d = 0; d < hd_; ++d) o[d] += w * vc[j * kd + kh * hd_ + d];
        }
      }
    });
    k::linear_forward(y, out.data(), o_->value.f32(), n, qd, d_);
  }

 private:
  static float* grad(Parameter* p) { return p->trainable ? p->grad.f32() : nullptr; }
  int64_t d_, nh_, nkv_, hd_;
  int layer_;
  Parameter *q_, *k_, *v_, *o_;
  std::vector<float> q, kk, v, att, probs;
  std::vector<float> scratch_[4];  // backward scratch, kept between steps
};

std::unique_ptr<Mixer> make_attention(const NemotronHConfig& c, int layer, const ParamFactory& add) {
  return std::make_unique<AttentionMixer>(c, layer, add);
}

}  // namespace nemokit::rt::detail
