// NemotronH's LoRA adapters: which projections a config adapts, their parameters and
// initialization, and folding them back into the base weights.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "linear.hpp"
#include "mixers.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/rng.hpp"

namespace nemokit::rt {

namespace {

// Per adapter, so the dropout masks of two projections fed the same input differ.
uint64_t adapter_seed(uint64_t seed, size_t index) {
  Rng rng(seed ^ (0xa0761d6478bd642full * (index + 1)));
  return rng.next_u64();
}

std::string last_component(const std::string& module) {
  auto dot = module.rfind('.');
  return dot == std::string::npos ? module : module.substr(dot + 1);
}

}  // namespace

void NemotronH::add_lora(const LoraConfig& config) {
  // Adapters on experts split over ranks would need their own exchange and checkpoint gather.
  if (expert_comm_)
    throw std::invalid_argument(
        "add_lora: LoRA on a model whose experts are split over ranks (expert parallel) is not supported");
  config.validate("add_lora");
  if (lora_) throw std::logic_error("add_lora: the model already has LoRA adapters (merge_lora first)");
  std::vector<detail::Linear*> all = linears(), chosen;
  std::vector<bool> hit(config.targets.size(), false);
  for (detail::Linear* l : all) {
    const std::string module = l->module();
    bool take = false;
    for (size_t t = 0; t < config.targets.size(); ++t)
      if (lora_target_matches(module, config.targets[t])) hit[t] = take = true;
    if (take) chosen.push_back(l);
  }
  for (size_t t = 0; t < config.targets.size(); ++t) {
    if (hit[t]) continue;
    std::vector<std::string> names;
    for (detail::Linear* l : all) {
      std::string n = last_component(l->module());
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("add_lora: target '" + config.targets[t] + "' matches no projection of this model; available: " +
                                list + " (or a longer suffix such as mixer.up_proj or shared_experts.up_proj)");
  }

  base_params_ = params_.size();
  trainable_before_lora_.clear();
  for (auto& p : params_) {
    trainable_before_lora_.push_back(p.trainable);
    p.trainable = false;
    p.grad = Tensor();  // a frozen base needs no gradient memory
  }
  // Weight decay like the rest of the runtime's matrices: HF Trainer and Megatron both decay
  // the 2-D adapter matrices.
  Rng rng(config.seed);
  for (size_t i = 0; i < chosen.size(); ++i) {
    detail::Linear* l = chosen[i];
    const std::string module = l->module();
    Parameter* A = add_param(module + ".lora_A.weight", {config.rank, l->in()}, true);
    Parameter* B = add_param(module + ".lora_B.weight", {l->out(), config.rank}, true);
    // kaiming_uniform(a = sqrt(5)) as PEFT initializes lora_A: bound = 1 / sqrt(fan_in).
    detail::fill_uniform(A->value, rng, 1.0f / std::sqrt(float(l->in())));
    l->attach({A, B, config.scale(), config.dropout, adapter_seed(config.seed, i)});
  }
  lora_ = config;
  lora_counter_ = 0;
}

void NemotronH::merge_lora() {
  if (!lora_) throw std::logic_error("merge_lora: the model has no LoRA adapters");
  for (detail::Linear* l : linears()) l->merge();
  // The adapters are the last parameters, so popping them leaves every other pointer valid.
  layout_.resize(layout_.size() - (params_.size() - base_params_));
  while (params_.size() > base_params_) params_.pop_back();
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = params_[i];
    p.trainable = trainable_before_lora_[i];
    if (!p.buffer && !p.grad.defined()) p.grad = Tensor::zeros(p.value.shape());
  }
  lora_.reset();
  lora_counter_ = 0;
}

const LoraConfig& NemotronH::lora_config() const {
  if (!lora_) throw std::logic_error("lora_config: the model has no LoRA adapters");
  return *lora_;
}

void NemotronH::restore_lora_dropout(uint64_t seed, uint64_t counter) {
  if (!lora_) throw std::logic_error("restore_lora_dropout: the model has no LoRA adapters");
  lora_->seed = seed;
  lora_counter_ = counter;
  size_t index = 0;
  for (detail::Linear* l : linears())
    if (l->adapter()) l->reseed(adapter_seed(seed, index++));
}

}  // namespace nemokit::rt
