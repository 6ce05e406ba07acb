// GQA self-attention of Nemotron-H: q/k/v projections, no rotary embedding, softmax at scale
// head_dim^-0.5, o_proj. Causal in the language model; bidirectional in the encoders.
#include <cmath>
#include <vector>

#include "mixers.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

class AttentionMixer : public Mixer {
 public:
  AttentionMixer(const NemotronHConfig& c, const std::string& prefix, int layer, bool causal, const ParamFactory& add)
      : d_(c.hidden_size), nh_(c.num_attention_heads), nkv_(c.num_key_value_heads), hd_(c.head_dim), layer_(layer),
        causal_(causal),
        q_(add(prefix + "q_proj.weight", {nh_ * hd_, d_}, true)),
        k_(add(prefix + "k_proj.weight", {nkv_ * hd_, d_}, true)),
        v_(add(prefix + "v_proj.weight", {nkv_ * hd_, d_}, true)),
        o_(add(prefix + "o_proj.weight", {d_, nh_ * hd_}, true)) {}

  void init(Rng& rng, const NemotronHConfig& c) override {
    for (Linear* p : {&q_, &k_, &v_, &o_}) fill_normal(p->weight()->value, rng, c.initializer_range);
  }

  void forward(const RunShape& rs, const float* x, float* y) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_;
    q.resize(rs.rows * qd), kk.resize(rs.rows * kd), v.resize(rs.rows * kd), att.resize(rs.rows * qd);
    probs.resize(rs.batch * nh_ * rs.seq * rs.seq);
    q_.forward(q.data(), x, rs.rows, rs.lora);
    k_.forward(kk.data(), x, rs.rows, rs.lora);
    v_.forward(v.data(), x, rs.rows, rs.lora);
    k::AttentionShape s{rs.batch, rs.seq, nh_, nkv_, hd_, causal_};
    k::attention_forward(s, q.data(), kk.data(), v.data(), rs.doc, att.data(), probs.data());
    o_.forward(y, att.data(), rs.rows, rs.lora);
  }

  void backward(const RunShape& rs, const float* x, const float* dy, float* dx) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_;
    auto &datt = scratch_[0], &dq = scratch_[1], &dk = scratch_[2], &dv = scratch_[3];
    datt.assign(rs.rows * qd, 0.0f), dq.assign(rs.rows * qd, 0.0f), dk.assign(rs.rows * kd, 0.0f);
    dv.assign(rs.rows * kd, 0.0f);
    o_.backward(datt.data(), dy, att.data(), rs.rows);
    k::AttentionShape s{rs.batch, rs.seq, nh_, nkv_, hd_, causal_};
    k::attention_backward(s, q.data(), kk.data(), v.data(), rs.doc, probs.data(), datt.data(), dq.data(),
                          dk.data(), dv.data());
    q_.backward(dx, dq.data(), x, rs.rows);
    k_.backward(dx, dk.data(), x, rs.rows);
    v_.backward(dx, dv.data(), x, rs.rows);
  }

  // Appends this token's k/v to each sequence's cache and attends over the whole cache.
  void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>& caches) override {
    const int64_t qd = nh_ * hd_, kd = nkv_ * hd_, rep = nh_ / nkv_;
    std::vector<float> qs(n * qd), ks(n * kd), vs(n * kd), out(n * qd);
    q_.forward(qs.data(), x, n);
    k_.forward(ks.data(), x, n);
    v_.forward(vs.data(), x, n);
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
    o_.forward(y, out.data(), n);
  }

  void linears(std::vector<Linear*>& out) override {
    for (Linear* p : {&q_, &k_, &v_, &o_}) out.push_back(p);
  }

 private:
  int64_t d_, nh_, nkv_, hd_;
  int layer_;  // the SequenceCache slot of step()
  bool causal_;
  Linear q_, k_, v_, o_;
  std::vector<float> q, kk, v, att, probs;
  std::vector<float> scratch_[4];  // backward scratch, kept between steps
};

std::unique_ptr<Mixer> make_attention(const NemotronHConfig& c, int layer, const ParamFactory& add) {
  return std::make_unique<AttentionMixer>(c, "backbone.layers." + std::to_string(layer) + ".mixer.", layer, true, add);
}

std::unique_ptr<Mixer> make_mtp_attention(const NemotronHConfig& c, const std::string& prefix, const ParamFactory& add) {
  return std::make_unique<AttentionMixer>(c, prefix, -1, true, add);
}

std::unique_ptr<Mixer> make_bidirectional_attention(const NemotronHConfig& c, const std::string& prefix,
                                                    const ParamFactory& add) {
  return std::make_unique<AttentionMixer>(c, prefix, -1, false, add);
}

}  // namespace nemokit::rt::detail
