#include <cmath>
#include <stdexcept>

#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/parallel.hpp"

namespace nemokit::rt {

static bool trained(const Parameter* p) { return p->trainable && !p->buffer && p->grad.defined(); }

double global_grad_norm(const std::vector<Parameter*>& params) {
  double sum = 0;
  for (const Parameter* p : params) {
    if (!trained(p)) continue;
    const float* g = p->grad.f32();
    for (int64_t i = 0; i < p->grad.numel(); ++i) sum += double(g[i]) * g[i];
  }
  return std::sqrt(sum);
}

double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm) {
  double norm = global_grad_norm(params);
  if (max_norm > 0 && norm > max_norm) {
    float scale = float(max_norm / (norm + 1e-6));
    for (Parameter* p : params) {
      if (!trained(p)) continue;
      float* g = p->grad.f32();
      for (int64_t i = 0; i < p->grad.numel(); ++i) g[i] *= scale;
    }
  }
  return norm;
}

// Moments exist only for parameters that are trained: a frozen base (LoRA) costs no optimizer
// memory. A parameter unfrozen later gets fresh moments at its first update.
AdamW::AdamW(std::vector<Parameter*> params, AdamWConfig config) : params_(std::move(params)), config_(config) {
  m_.resize(params_.size()), v_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i)
    if (trained(params_[i])) {
      m_[i] = Tensor::zeros(params_[i]->value.shape());
      v_[i] = Tensor::zeros(params_[i]->value.shape());
    }
}

void AdamW::step(float lr) {
  ++step_;
  const float b1 = config_.beta1, b2 = config_.beta2;
  const float c1 = 1.0f - std::pow(b1, float(step_)), c2 = 1.0f - std::pow(b2, float(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter* p = params_[i];
    if (!trained(p)) continue;
    if (!m_[i].defined()) m_[i] = Tensor::zeros(p->value.shape()), v_[i] = Tensor::zeros(p->value.shape());
    float* w = p->value.f32();
    const float* g = p->grad.f32();
    float* m = m_[i].f32();
    float* v = v_[i].f32();
    const float decay = p->decay ? lr * config_.weight_decay : 0.0f;
    parallel_for(p->value.numel(), [&](int64_t a, int64_t b) {
      for (int64_t j = a; j < b; ++j) {
        m[j] = b1 * m[j] + (1.0f - b1) * g[j];
        v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
        w[j] -= decay * w[j];
        w[j] -= lr * (m[j] / c1) / (std::sqrt(v[j] / c2) + config_.eps);
      }
    });
  }
}

std::vector<NamedTensor> AdamW::state_tensors() const {
  std::vector<NamedTensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i]->buffer || !m_[i].defined()) continue;
    out.emplace_back(params_[i]->name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i]->name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void AdamW::load_state(const SafetensorsFile& file, int64_t steps) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i]->buffer) continue;
    // Frozen parameters may have no moments saved; a trained one must (load_f32 names it).
    if (!trained(params_[i]) && !file.find(params_[i]->name + ".exp_avg")) {
      m_[i] = Tensor(), v_[i] = Tensor();
      continue;
    }
    for (auto [suffix, dst] : {std::pair{".exp_avg", &m_[i]}, std::pair{".exp_avg_sq", &v_[i]}}) {
      std::string name = params_[i]->name + suffix;
      Tensor t = file.load_f32(name);
      if (t.shape() != params_[i]->value.shape())
        throw std::runtime_error(file.path() + ": tensor '" + name + "' has shape " + t.shape_string() + ", expected " +
                                 params_[i]->value.shape_string());
      *dst = t;
    }
  }
  step_ = steps;
}

}  // namespace nemokit::rt
