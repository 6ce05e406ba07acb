// Mamba2 mixer as transformers' NemotronH CPU path computes it:
//   [z | xBC | dt] = in_proj(x); xBC = silu(causal_conv1d(xBC) + b); dt = softplus(dt + dt_bias)
//   clamped below at time_step_min; A = -exp(A_log); y = SSD(x, dt, A, B, C) + D x;
//   out = out_proj(w * grouped_rmsnorm(y * silu(z))).
#include <cmath>
#include <vector>

#include "mixers.hpp"
#include "nemokit/runtime/kernels.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

class Mamba2Mixer : public Mixer {
 public:
  Mamba2Mixer(const NemotronHConfig& c, int layer, const ParamFactory& add)
      : d_(c.hidden_size), H_(c.mamba_num_heads), P_(c.mamba_head_dim), G_(c.ssm_state_size ? c.n_groups : 1),
        N_(c.ssm_state_size), K_(c.conv_kernel), Q_(c.chunk_size), I_(c.mamba_d_inner()),
        conv_dim_(c.mamba_conv_dim()), proj_(c.mamba_in_proj_dim()), eps_(c.layer_norm_epsilon),
        dt_min_(c.time_step_min), layer_(layer), layers_(c.num_layers()), use_conv_bias_(c.use_conv_bias) {
    std::string p = "backbone.layers." + std::to_string(layer) + ".mixer.";
    in_proj_ = std::make_unique<Linear>(add(p + "in_proj.weight", {proj_, d_}, true));
    conv_w_ = add(p + "conv1d.weight", {conv_dim_, 1, K_}, true);
    if (use_conv_bias_) conv_b_ = add(p + "conv1d.bias", {conv_dim_}, false);
    A_log_ = add(p + "A_log", {H_}, false);
    D_ = add(p + "D", {H_}, false);
    dt_bias_ = add(p + "dt_bias", {H_}, false);
    norm_ = add(p + "norm.weight", {I_}, false);
    out_proj_ = std::make_unique<Linear>(add(p + "out_proj.weight", {d_, I_}, true));
  }

  void init(Rng& rng, const NemotronHConfig& c) override {
    fill_normal(in_proj_->weight()->value, rng, c.initializer_range);
    float bound = 1.0f / std::sqrt(float(K_));
    fill_uniform(conv_w_->value, rng, bound);
    if (conv_b_) fill_uniform(conv_b_->value, rng, bound);
    for (int64_t h = 0; h < H_; ++h) {
      A_log_->value.f32()[h] = std::log(float(h + 1));
      D_->value.f32()[h] = 1.0f;
      double lo = std::log(double(c.time_step_min)), hi = std::log(double(c.time_step_max));
      double dt = std::max(std::exp(rng.uniform_double() * (hi - lo) + lo), double(c.time_step_floor));
      dt_bias_->value.f32()[h] = float(dt + std::log(-std::expm1(-dt)));  // inverse softplus
    }
    fill_value(norm_->value, 1.0f);
    float out_bound = 1.0f / std::sqrt(float(I_));
    Tensor& out_w = out_proj_->weight()->value;
    fill_uniform(out_w, rng, out_bound);
    if (c.rescale_prenorm_residual) {
      float s = 1.0f / std::sqrt(float(layers_));
      float* w = out_w.f32();
      for (int64_t i = 0; i < out_w.numel(); ++i) w[i] *= s;
    }
  }

  void forward(const RunShape& rs, const float* x, float* y) override {
    const int64_t R = rs.rows;
    zx_.resize(R * proj_), pre_.resize(R * conv_dim_), xbc_.resize(R * conv_dim_);
    dt_.resize(R * H_), scan_.resize(R * I_), gated_.resize(R * I_), normed_.resize(R * I_);
    rstd_.resize(R * G_);
    k::SsdShape s = shape(rs);
    states_.resize(s.batch * H_ * s.num_chunks() * P_ * N_);
    in_proj_->forward(zx_.data(), x, R, rs.lora);
    k::conv1d_forward(pre_.data(), zx_.data() + I_, proj_, conv_w_->value.f32(), conv_b_ ? conv_b_->value.f32() : nullptr,
                      rs.doc, rs.batch, rs.seq, conv_dim_, K_);
    compute_A();
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = 0; c < conv_dim_; ++c) xbc_[r * conv_dim_ + c] = k::silu(pre_[r * conv_dim_ + c]);
        for (int64_t h = 0; h < H_; ++h) dt_[r * H_ + h] = time_step(zx_[r * proj_ + I_ + conv_dim_ + h], h);
      }
    });
    k::ssd_forward(s, inputs(rs), scan_.data(), states_.data());
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * I_; i < r1 * I_; ++i) gated_[i] = scan_[i] * k::silu(zx_[(i / I_) * proj_ + i % I_]);
    });
    k::rmsnorm_forward(normed_.data(), rstd_.data(), gated_.data(), norm_->value.f32(), R, I_, I_ / G_, eps_);
    out_proj_->forward(y, normed_.data(), R, rs.lora);
  }

  void backward(const RunShape& rs, const float* x, const float* dy, float* dx) override {
    const int64_t R = rs.rows;
    auto& dnormed = grad_buf_[0];
    auto& dgated = grad_buf_[1];
    auto& dscan = grad_buf_[2];
    auto& dzx = grad_buf_[3];
    auto& dxbc = grad_buf_[4];
    auto& ddt = grad_buf_[5];
    dnormed.assign(R * I_, 0.0f), dgated.assign(R * I_, 0.0f), dscan.resize(R * I_);
    dzx.assign(R * proj_, 0.0f), dxbc.assign(R * conv_dim_, 0.0f), ddt.assign(R * H_, 0.0f);
    std::vector<float> dA(H_, 0.0f), dD(H_, 0.0f);
    out_proj_->backward(dnormed.data(), dy, normed_.data(), R);
    k::rmsnorm_backward(dgated.data(), grad(norm_), dnormed.data(), gated_.data(), norm_->value.f32(), rstd_.data(),
                        R, I_, I_ / G_);
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * I_; i < r1 * I_; ++i) {
        float z = zx_[(i / I_) * proj_ + i % I_];
        dscan[i] = dgated[i] * k::silu(z);
        dzx[(i / I_) * proj_ + i % I_] = dgated[i] * scan_[i] * k::silu_grad(z);
      }
    });
    k::SsdShape s = shape(rs);
    k::SsdGrads g{dxbc.data(), dxbc.data() + I_, dxbc.data() + I_ + G_ * N_, ddt.data(), dA.data(), dD.data()};
    k::ssd_backward(s, inputs(rs), states_.data(), dscan.data(), g);
    if (A_log_->trainable)
      for (int64_t h = 0; h < H_; ++h) A_log_->grad.f32()[h] += dA[h] * A_[h];
    if (D_->trainable)
      for (int64_t h = 0; h < H_; ++h) D_->grad.f32()[h] += dD[h];
    // dt = max(softplus(raw + dt_bias), dt_min): no gradient where the clamp is active.
    for (int64_t r = 0; r < R; ++r)
      for (int64_t h = 0; h < H_; ++h) {
        float raw = zx_[r * proj_ + I_ + conv_dim_ + h] + dt_bias_->value.f32()[h];
        float sp = k::softplus(raw);
        float d = sp < dt_min_ ? 0.0f : ddt[r * H_ + h] / (1.0f + std::exp(-raw));
        dzx[r * proj_ + I_ + conv_dim_ + h] = d;
        if (dt_bias_->trainable) dt_bias_->grad.f32()[h] += d;
      }
    parallel_for(R, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * conv_dim_; i < r1 * conv_dim_; ++i) dxbc[i] *= k::silu_grad(pre_[i]);
    });
    k::conv1d_backward(dzx.data() + I_, proj_, grad(conv_w_), conv_b_ ? grad(conv_b_) : nullptr, dxbc.data(),
                       zx_.data() + I_, proj_, conv_w_->value.f32(), rs.doc, rs.batch, rs.seq, conv_dim_, K_);
    in_proj_->backward(dx, dzx.data(), x, R);
  }

  void init_cache(SequenceCache& c) const override {
    c.conv[layer_].assign((K_ - 1) * conv_dim_, 0.0f);
    c.ssm[layer_].assign(H_ * P_ * N_, 0.0f);
  }

  // Recurrent form of the same computation: the conv reads its last K-1 inputs from the
  // cache and the SSM state advances by one step.
  void step(const float* x, float* y, int64_t n, const std::vector<SequenceCache*>& caches) override {
    std::vector<float> zx(n * proj_), xbc(conv_dim_), scan(n * I_), gated(n * I_), normed(n * I_), rstd(n * G_);
    in_proj_->forward(zx.data(), x, n);
    compute_A();
    const float* w = conv_w_->value.f32();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float>& win = caches[i]->conv[layer_];
      std::vector<float>& S = caches[i]->ssm[layer_];
      const float* cur = zx.data() + i * proj_ + I_;
      for (int64_t c = 0; c < conv_dim_; ++c) {
        float acc = conv_b_ ? conv_b_->value.f32()[c] : 0.0f;
        for (int64_t kk = 0; kk < K_ - 1; ++kk) acc += w[c * K_ + kk] * win[kk * conv_dim_ + c];
        acc += w[c * K_ + K_ - 1] * cur[c];
        xbc[c] = k::silu(acc);
      }
      if (K_ > 1) {
        win.erase(win.begin(), win.begin() + conv_dim_);
        win.insert(win.end(), cur, cur + conv_dim_);
      }
      const float* xs = xbc.data();
      const float* B = xbc.data() + I_;
      const float* C = xbc.data() + I_ + G_ * N_;
      for (int64_t h = 0; h < H_; ++h) {
        const int64_t g = h / (H_ / G_);
        float dt = time_step(zx[i * proj_ + I_ + conv_dim_ + h], h);
        float decay = std::exp(A_[h] * dt);
        for (int64_t p = 0; p < P_; ++p) {
          float* Sp = S.data() + (h * P_ + p) * N_;
          float xp = xs[h * P_ + p];
          float out = 0;
          for (int64_t nn = 0; nn < N_; ++nn) {
            Sp[nn] = decay * Sp[nn] + dt * xp * B[g * N_ + nn];
            out += Sp[nn] * C[g * N_ + nn];
          }
          scan[i * I_ + h * P_ + p] = out + D_->value.f32()[h] * xp;
        }
      }
      for (int64_t j = 0; j < I_; ++j) gated[i * I_ + j] = scan[i * I_ + j] * k::silu(zx[i * proj_ + j]);
    }
    k::rmsnorm_forward(normed.data(), rstd.data(), gated.data(), norm_->value.f32(), n, I_, I_ / G_, eps_);
    out_proj_->forward(y, normed.data(), n);
  }

  void linears(std::vector<Linear*>& out) override {
    out.push_back(in_proj_.get());
    out.push_back(out_proj_.get());
  }

 private:
  static float* grad(Parameter* p) { return p->trainable ? p->grad.f32() : nullptr; }
  void compute_A() {
    A_.resize(H_);
    for (int64_t h = 0; h < H_; ++h) A_[h] = -std::exp(A_log_->value.f32()[h]);
  }
  float time_step(float raw, int64_t h) const {
    return std::max(k::softplus(raw + dt_bias_->value.f32()[h]), dt_min_);
  }
  k::SsdShape shape(const RunShape& rs) const { return {rs.batch, rs.seq, H_, P_, G_, N_, Q_}; }
  k::SsdInputs inputs(const RunShape& rs) const {
    return {xbc_.data(), xbc_.data() + I_, xbc_.data() + I_ + G_ * N_, conv_dim_, dt_.data(), A_.data(),
            D_->value.f32(), rs.doc};
  }

  int64_t d_, H_, P_, G_, N_, K_, Q_, I_, conv_dim_, proj_;
  float eps_, dt_min_;
  int layer_;
  int64_t layers_;
  bool use_conv_bias_;
  // Linear has no default state: built in the constructor body to keep the parameter order.
  std::unique_ptr<Linear> in_proj_, out_proj_;
  Parameter *conv_w_, *conv_b_ = nullptr, *A_log_, *D_, *dt_bias_, *norm_;
  std::vector<float> grad_buf_[6];  // backward scratch, kept to avoid reallocating per step
  std::vector<float> A_, zx_, pre_, xbc_, dt_, scan_, gated_, normed_, rstd_, states_;
};

std::unique_ptr<Mixer> make_mamba2(const NemotronHConfig& c, int layer, const ParamFactory& add) {
  return std::make_unique<Mamba2Mixer>(c, layer, add);
}

}  // namespace nemokit::rt::detail
