#pragma once
// The [train], [eval], [lora] and [checkpoint] tables of an SFT config, checked up front so a
// typo fails before any work, with the key named.

#include "nemokit/runtime/run/optimizer_options.hpp"
#include "nemokit/runtime/run/train_device.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::sft {

enum class LossNormalization {
  Token,   // mean over every trained token of the global batch (nano3)
  Sample,  // mean over each sample's trained tokens, then over the samples (super3)
};

struct SftOptions {
  int64_t micro_batch_size = 1;   // packs per forward
  int64_t global_batch_size = 1;  // packs per optimizer step
  int64_t max_steps = 0;
  rt::OptimizerOptions optim = [] {  // fine-tuning defaults: small steps, little decay
    rt::OptimizerOptions o;
    o.lr = 5e-6, o.min_lr = 5e-7, o.weight_decay = 0.01, o.adam_beta2 = 0.98;
    return o;
  }();
  uint64_t seed = 1234;
  LossNormalization loss_normalization = LossNormalization::Token;
  int64_t eval_interval = 0, eval_steps = 0, save_interval = 0, log_interval = 1;
  double moe_bias_update_rate = 0.0, moe_aux_loss_coeff = 0.0;
  rt::Device device = rt::Device::cpu;  // train.device: where the steps run (run/train_device.hpp)
  // Parameter-name prefixes, applied after LoRA (which freezes all but its adapters) in this
  // order: train_only (everything else frozen: omni3's image_text trains "vision_projector."),
  // frozen, then trained (e.g. a projector beside LoRA adapters).
  std::vector<std::string> train_only, frozen, trained;

  // [eval]: greedy generation checks
  std::filesystem::path eval_file;  // JSONL of {kind, messages, expected, match}; empty: none
  int64_t eval_max_examples = 200;
  int64_t eval_max_new_tokens = 48;
  int64_t eval_samples = 3;         // answers per kind shown in the log at the end

  // [lora]
  bool lora = false;
  int64_t lora_rank = 16;
  double lora_alpha = 32, lora_dropout = 0;
  std::vector<std::string> lora_targets;

  // [checkpoint]
  std::filesystem::path checkpoint_dir;
  bool resume = true;
  int64_t keep_checkpoints = 2;

  static SftOptions from_config(const nlohmann::json& config);
  int64_t accumulation_steps() const { return global_batch_size / micro_batch_size; }
};

}  // namespace nemokit::sft
