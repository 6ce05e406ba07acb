// A modality encoder of an omni model, forward and backward on the CPU in float32.
//   vision: tile [channels, size, size] -> patches [g*g, channels*p*p] -> patch_embed -> + positions
//           -> blocks -> norm -> pixel shuffle (downsample^2 neighbours concatenated) -> projector
//   audio:  frames [length, mels] -> conv1 (kernel 3, stride 2) -> relu^2 -> conv2 (same) -> relu^2
//           -> + positions -> blocks -> norm -> the clip's real positions -> projector
// Clips of different lengths share one batch: frames past a clip's end are zeros, positions
// past its end are zeroed after the first convolution (as if the clip were alone) and form their
// own attention document, so a clip's tokens never depend on its neighbours' padding.
#include "encoder.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/kernels.hpp"

namespace nemokit::rt::detail {
namespace k = kernels;

struct Encoder::Layer {
  Parameter* norm1 = nullptr;
  Parameter* norm2 = nullptr;
  std::unique_ptr<Mixer> attn, mlp;
  std::vector<float> normed1, rstd1, normed2, rstd2;
};

namespace {

// Central prefix of every parameter name: vision_model / vision_projector, audio_model / ...
std::string model_prefix(const EncoderConfig& c) { return std::string(modality_name(c.modality)) + "_model."; }
std::string projector_prefix(const EncoderConfig& c) { return std::string(modality_name(c.modality)) + "_projector."; }

}  // namespace

Encoder::Encoder(const EncoderConfig& config, const ParamFactory& add) : c_(config) {
  c_.validate(std::string(modality_name(c_.modality)) + "_config");
  mixer_config_.hidden_size = c_.hidden_size;
  mixer_config_.num_attention_heads = c_.num_attention_heads;
  mixer_config_.num_key_value_heads = c_.num_attention_heads;
  mixer_config_.head_dim = c_.hidden_size / c_.num_attention_heads;
  mixer_config_.initializer_range = c_.initializer_range;
  const std::string m = model_prefix(c_), p = projector_prefix(c_);
  const int64_t C = c_.hidden_size;
  auto track = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    Parameter* prm = add(name, std::move(shape), decay);
    body_.push_back(prm);
    return prm;
  };
  if (c_.modality == Modality::vision) {
    patch_ = std::make_unique<Linear>(track(m + "patch_embed.weight", {C, c_.input_features()}, true));
  } else {
    conv1_ = std::make_unique<Linear>(track(m + "subsample.conv1.weight", {C, 3 * c_.num_mel_bins}, true));
    conv2_ = std::make_unique<Linear>(track(m + "subsample.conv2.weight", {C, 3 * C}, true));
  }
  pos_ = track(m + "position_embedding.weight", {c_.max_position_embeddings, C}, false);
  const ParamFactory tracked = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    return track(name, std::move(shape), decay);
  };
  for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
    auto layer = std::make_unique<Layer>();
    const std::string lp = m + "layers." + std::to_string(l) + ".";
    layer->norm1 = track(lp + "norm1.weight", {C}, false);
    layer->attn = make_bidirectional_attention(mixer_config_, lp + "attn.", tracked);
    layer->norm2 = track(lp + "norm2.weight", {C}, false);
    layer->mlp = make_mlp(mixer_config_, lp + "mlp.", c_.intermediate_size, tracked);
    layers_.push_back(std::move(layer));
  }
  norm_ = track(m + "norm.weight", {C}, false);
  proj_norm_ = add(p + "norm.weight", {head_input()}, false);
  fc1_ = std::make_unique<Linear>(add(p + "fc1.weight", {c_.projector_hidden_size, head_input()}, true));
  fc2_ = std::make_unique<Linear>(add(p + "fc2.weight", {c_.output_size, c_.projector_hidden_size}, true));
}

Encoder::~Encoder() = default;

int64_t Encoder::head_input() const {
  return c_.modality == Modality::vision ? c_.hidden_size * c_.downsample * c_.downsample : c_.hidden_size;
}

void Encoder::init(Rng& rng) {
  const float std = float(c_.initializer_range);
  for (Linear* l : {patch_.get(), conv1_.get(), conv2_.get(), fc1_.get(), fc2_.get()})
    if (l) fill_normal(l->weight()->value, rng, std);
  fill_normal(pos_->value, rng, std);
  for (auto& layer : layers_) {
    fill_value(layer->norm1->value, 1.0f);
    fill_value(layer->norm2->value, 1.0f);
    layer->attn->init(rng, mixer_config_);
    layer->mlp->init(rng, mixer_config_);
  }
  fill_value(norm_->value, 1.0f);
  fill_value(proj_norm_->value, 1.0f);
}

// ---- stem -----------------------------------------------------------------------------------

void Encoder::stem_forward(const MediaInput& in) {
  const int64_t C = c_.hidden_size, n = in.items;
  std::vector<float>& h0 = residual_[0];
  if (c_.modality == Modality::vision) {
    const int64_t S = c_.image_size, p = c_.patch_size, g = c_.patches_per_side(), F = c_.input_features();
    const int64_t T = g * g, ch = c_.num_channels;
    col1_.resize(n * T * F);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t py = 0; py < g; ++py)
        for (int64_t px = 0; px < g; ++px) {
          float* row = col1_.data() + ((i * T) + py * g + px) * F;
          // feature order [channel, dy, dx]: a Conv2d weight [C, channels, p, p] flattened
          for (int64_t c = 0; c < ch; ++c)
            for (int64_t dy = 0; dy < p; ++dy)
              for (int64_t dx = 0; dx < p; ++dx)
                *row++ = in.data[((i * ch + c) * S + py * p + dy) * S + px * p + dx];
        }
    h0.resize(n * T * C);
    patch_->forward(h0.data(), col1_.data(), n * T);
  } else {
    const int64_t L = in.length, M = c_.num_mel_bins;
    t1_ = (L + 1) / 2;
    const int64_t t2 = c_.positions(L);
    valid1_.resize(n), valid2_.resize(n);
    for (int64_t i = 0; i < n; ++i) valid1_[i] = (in.valid[i] + 1) / 2, valid2_[i] = c_.positions(in.valid[i]);
    // conv1 over frames: window [2t-1, 2t+1], frames outside the clip are zero
    col1_.assign(n * t1_ * 3 * M, 0.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < valid1_[i]; ++t)
        for (int64_t kk = 0; kk < 3; ++kk) {
          const int64_t f = 2 * t - 1 + kk;
          if (f < 0 || f >= in.valid[i]) continue;
          std::copy_n(in.data.data() + (i * L + f) * M, M, col1_.data() + ((i * t1_ + t) * 3 + kk) * M);
        }
    a1_.resize(n * t1_ * C), z1_.resize(n * t1_ * C);
    conv1_->forward(a1_.data(), col1_.data(), n * t1_);
    k::relu2_forward(z1_.data(), a1_.data(), n * t1_ * C);
    for (int64_t i = 0; i < n; ++i)  // positions past the clip are padding, as if it were alone
      std::fill(z1_.begin() + (i * t1_ + valid1_[i]) * C, z1_.begin() + (i + 1) * t1_ * C, 0.0f);
    col2_.assign(n * t2 * 3 * C, 0.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < valid2_[i]; ++t)
        for (int64_t kk = 0; kk < 3; ++kk) {
          const int64_t s = 2 * t - 1 + kk;
          if (s < 0 || s >= valid1_[i]) continue;
          std::copy_n(z1_.data() + (i * t1_ + s) * C, C, col2_.data() + ((i * t2 + t) * 3 + kk) * C);
        }
    a2_.resize(n * t2 * C), h0.resize(n * t2 * C);
    conv2_->forward(a2_.data(), col2_.data(), n * t2);
    k::relu2_forward(h0.data(), a2_.data(), n * t2 * C);
  }
  const int64_t T = rs_.seq;
  for (int64_t r = 0; r < n * T; ++r) {
    const float* pe = pos_->value.f32() + (r % T) * C;
    for (int64_t c = 0; c < C; ++c) h0[r * C + c] += pe[c];
  }
}

void Encoder::stem_backward(const float* dh0) {
  const int64_t C = c_.hidden_size, n = in_.items, T = rs_.seq;
  if (pos_->trainable)
    for (int64_t r = 0; r < n * T; ++r) {
      float* dp = pos_->grad.f32() + (r % T) * C;
      for (int64_t c = 0; c < C; ++c) dp[c] += dh0[r * C + c];
    }
  if (c_.modality == Modality::vision) {
    patch_->backward(nullptr, dh0, col1_.data(), n * T);
    return;
  }
  const int64_t t2 = T;
  std::vector<float> da2(n * t2 * C, 0.0f), dcol2(n * t2 * 3 * C, 0.0f);
  k::relu2_backward(da2.data(), dh0, a2_.data(), n * t2 * C);
  conv2_->backward(conv1_->weight()->trainable ? dcol2.data() : nullptr, da2.data(), col2_.data(), n * t2);
  if (!conv1_->weight()->trainable) return;
  std::vector<float> dz1(n * t1_ * C, 0.0f), da1(n * t1_ * C, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < valid2_[i]; ++t)
      for (int64_t kk = 0; kk < 3; ++kk) {
        const int64_t s = 2 * t - 1 + kk;
        if (s < 0 || s >= valid1_[i]) continue;
        const float* src = dcol2.data() + ((i * t2 + t) * 3 + kk) * C;
        float* dst = dz1.data() + (i * t1_ + s) * C;
        for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
      }
  k::relu2_backward(da1.data(), dz1.data(), a1_.data(), n * t1_ * C);
  conv1_->backward(nullptr, da1.data(), col1_.data(), n * t1_);
}

// ---- whole encoder --------------------------------------------------------------------------

const std::vector<float>& Encoder::forward(const MediaInput& in, bool training) {
  const int64_t C = c_.hidden_size, n = in.items;
  const bool vision = c_.modality == Modality::vision;
  const int64_t T = vision ? c_.positions() : c_.positions(in.length);
  if (n <= 0) throw std::invalid_argument(std::string(modality_name(c_.modality)) + " encoder: no items");
  const int64_t expect = vision ? n * c_.num_channels * c_.image_size * c_.image_size : n * in.length * c_.num_mel_bins;
  if (int64_t(in.data.size()) != expect)
    throw std::invalid_argument(std::string(modality_name(c_.modality)) + " encoder: input has " +
                                std::to_string(in.data.size()) + " values, expected " + std::to_string(expect));
  if (!vision) {
    if (int64_t(in.valid.size()) != n) throw std::invalid_argument("audio encoder: one valid length per clip required");
    for (int64_t v : in.valid)
      if (v < 1 || v > in.length) throw std::invalid_argument("audio encoder: a clip's frames must be in 1..length");
  }
  if (T > c_.max_position_embeddings)
    throw std::invalid_argument(std::string(modality_name(c_.modality)) + " encoder: " + std::to_string(T) +
                                " positions exceed max_position_embeddings " + std::to_string(c_.max_position_embeddings));
  in_ = in;
  rs_ = RunShape{};
  rs_.batch = n, rs_.seq = T, rs_.rows = n * T, rs_.training = training;
  const int64_t R = rs_.rows, L = int64_t(layers_.size());
  residual_.resize(2 * L + 1);
  stem_forward(in);
  if (!vision) {  // real positions of clip i are document 2i, its padding document 2i+1
    doc_.resize(R);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < T; ++t) doc_[i * T + t] = int32_t(2 * i + (t < valid2_[i] ? 0 : 1));
    rs_.doc = doc_.data();
  }
  const float eps = float(c_.layer_norm_epsilon);
  std::vector<float> mixed(R * C);
  for (int64_t l = 0; l < L; ++l) {
    Layer& y = *layers_[l];
    const std::vector<float>& x0 = residual_[2 * l];
    y.normed1.resize(R * C), y.rstd1.resize(R);
    k::rmsnorm_forward(y.normed1.data(), y.rstd1.data(), x0.data(), y.norm1->value.f32(), R, C, C, eps);
    y.attn->forward(rs_, y.normed1.data(), mixed.data());
    std::vector<float>& x1 = residual_[2 * l + 1];
    x1.resize(R * C);
    for (int64_t i = 0; i < R * C; ++i) x1[i] = x0[i] + mixed[i];
    y.normed2.resize(R * C), y.rstd2.resize(R);
    k::rmsnorm_forward(y.normed2.data(), y.rstd2.data(), x1.data(), y.norm2->value.f32(), R, C, C, eps);
    y.mlp->forward(rs_, y.normed2.data(), mixed.data());
    std::vector<float>& x2 = residual_[2 * l + 2];
    x2.resize(R * C);
    for (int64_t i = 0; i < R * C; ++i) x2[i] = x1[i] + mixed[i];
  }
  final_.resize(R * C), final_rstd_.resize(R);
  k::rmsnorm_forward(final_.data(), final_rstd_.data(), residual_[2 * L].data(), norm_->value.f32(), R, C, C, eps);

  // Which encoder rows make each projector input row.
  gather_.clear();
  if (vision) {
    const int64_t g = c_.patches_per_side(), ds = c_.downsample, go = g / ds;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t Y = 0; Y < go; ++Y)
        for (int64_t X = 0; X < go; ++X)
          for (int64_t dy = 0; dy < ds; ++dy)
            for (int64_t dx = 0; dx < ds; ++dx) gather_.push_back(i * T + (Y * ds + dy) * g + X * ds + dx);
  } else {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t t = 0; t < valid2_[i]; ++t) gather_.push_back(i * T + t);
  }
  const int64_t K = vision ? c_.downsample * c_.downsample : 1, N = int64_t(gather_.size()) / K;
  const int64_t P = head_input(), H = c_.projector_hidden_size, O = c_.output_size;
  head_in_.resize(N * P);
  for (int64_t r = 0; r < N * K; ++r) std::copy_n(final_.data() + gather_[r] * C, C, head_in_.data() + r * C);
  head_normed_.resize(N * P), head_rstd_.resize(N);
  k::rmsnorm_forward(head_normed_.data(), head_rstd_.data(), head_in_.data(), proj_norm_->value.f32(), N, P, P, eps);
  u_.resize(N * H), act_.resize(N * H), out_.resize(N * O);
  fc1_->forward(u_.data(), head_normed_.data(), N);
  k::relu2_forward(act_.data(), u_.data(), N * H);
  fc2_->forward(out_.data(), act_.data(), N);
  return out_;
}

void Encoder::backward(const float* dout) {
  const int64_t C = c_.hidden_size, R = rs_.rows, L = int64_t(layers_.size());
  const int64_t K = c_.modality == Modality::vision ? c_.downsample * c_.downsample : 1;
  const int64_t N = int64_t(gather_.size()) / K, P = head_input(), H = c_.projector_hidden_size;
  const bool body_trains = std::any_of(body_.begin(), body_.end(), [](Parameter* p) { return p->trainable; });
  std::vector<float> dact(N * H, 0.0f), du(N * H, 0.0f), dnormed(N * P, 0.0f);
  fc2_->backward(dact.data(), dout, act_.data(), N);
  k::relu2_backward(du.data(), dact.data(), u_.data(), N * H);
  fc1_->backward(proj_norm_->trainable || body_trains ? dnormed.data() : nullptr, du.data(), head_normed_.data(), N);
  if (!proj_norm_->trainable && !body_trains) return;
  std::vector<float> dhead(N * P, 0.0f);
  k::rmsnorm_backward(dhead.data(), proj_norm_->trainable ? proj_norm_->grad.f32() : nullptr, dnormed.data(),
                      head_in_.data(), proj_norm_->value.f32(), head_rstd_.data(), N, P, P);
  if (!body_trains) return;  // a frozen encoder under a trained projector stops here

  std::vector<float> dfinal(R * C, 0.0f);
  for (int64_t r = 0; r < N * K; ++r) {
    const float* src = dhead.data() + r * C;
    float* dst = dfinal.data() + gather_[r] * C;
    for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
  }
  auto grad_of = [](Parameter* p) { return p->trainable ? p->grad.f32() : nullptr; };
  std::vector<float> dh(R * C, 0.0f), dn(R * C);
  k::rmsnorm_backward(dh.data(), grad_of(norm_), dfinal.data(), residual_[2 * L].data(), norm_->value.f32(),
                      final_rstd_.data(), R, C, C);
  for (int64_t l = L; l-- > 0;) {
    Layer& y = *layers_[l];
    std::fill(dn.begin(), dn.end(), 0.0f);
    y.mlp->backward(rs_, y.normed2.data(), dh.data(), dn.data());
    k::rmsnorm_backward(dh.data(), grad_of(y.norm2), dn.data(), residual_[2 * l + 1].data(), y.norm2->value.f32(),
                        y.rstd2.data(), R, C, C);
    std::fill(dn.begin(), dn.end(), 0.0f);
    y.attn->backward(rs_, y.normed1.data(), dh.data(), dn.data());
    k::rmsnorm_backward(dh.data(), grad_of(y.norm1), dn.data(), residual_[2 * l].data(), y.norm1->value.f32(),
                        y.rstd1.data(), R, C, C);
  }
  stem_backward(dh.data());
}

}  // namespace nemokit::rt::detail
