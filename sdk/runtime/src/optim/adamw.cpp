#include <cmath>
#include <stdexcept>

#include "adamw_update.hpp"
#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

using detail::trained;

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
  clip_grad_norm_to(params, max_norm, norm);
  return norm;
}

void clip_grad_norm_to(const std::vector<Parameter*>& params, double max_norm, double norm) {
  if (max_norm > 0 && norm > max_norm) {
    float scale = float(max_norm / (norm + 1e-6));
    for (Parameter* p : params) {
      if (!trained(p)) continue;
      float* g = p->grad.f32();
      for (int64_t i = 0; i < p->grad.numel(); ++i) g[i] *= scale;
    }
  }
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
  if (sharded()) throw std::logic_error("AdamW::step on a ZeRO-1 optimizer: use step_sharded");
  ++step_;
  const detail::AdamWStep s(config_, lr, step_);
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter* p = params_[i];
    if (!trained(p)) continue;
    if (!m_[i].defined()) m_[i] = Tensor::zeros(p->value.shape()), v_[i] = Tensor::zeros(p->value.shape());
    detail::adamw_update(s, p->decay, p->value.f32(), p->grad.f32(), m_[i].f32(), v_[i].f32(), p->value.numel());
  }
}

std::pair<Tensor*, Tensor*> AdamW::moments_of(const Parameter* p) {
  if (sharded()) throw std::logic_error("AdamW::moments_of on a ZeRO-1 optimizer: its moments are sharded");
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i] != p) continue;
    if (!trained(p)) break;
    if (!m_[i].defined()) m_[i] = Tensor::zeros(p->value.shape()), v_[i] = Tensor::zeros(p->value.shape());
    return {&m_[i], &v_[i]};
  }
  throw std::logic_error("AdamW::moments_of: " + p->name + " is not trained by this optimizer");
}

std::vector<NamedTensor> AdamW::state_tensors() const {
  if (sharded() && !gathered_)
    throw std::logic_error("AdamW::state_tensors: the ZeRO-1 moments are sharded; call gather_state() on every rank first");
  std::vector<NamedTensor> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i]->buffer || !m_[i].defined()) continue;
    out.emplace_back(params_[i]->name + ".exp_avg", m_[i]);
    out.emplace_back(params_[i]->name + ".exp_avg_sq", v_[i]);
  }
  return out;
}

void AdamW::load_state(const SafetensorsFile& file, int64_t steps) {
  load_whole_moments(file);
  if (sharded()) keep_own_block();
  step_ = steps;
}

size_t AdamW::state_bytes() const {
  size_t n = m_block_.size() + v_block_.size();
  if (!sharded())
    for (size_t i = 0; i < params_.size(); ++i)
      if (m_[i].defined()) n += size_t(m_[i].numel() + v_[i].numel());
  for (size_t i : experts_) n += size_t(m_[i].numel() + v_[i].numel());  // ZeRO-1 keeps them whole
  return n * sizeof(float);
}

void AdamW::load_whole_moments(const SafetensorsFile& file) {
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
}

}  // namespace nemokit::rt
