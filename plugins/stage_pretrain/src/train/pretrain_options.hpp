#pragma once
// The [train] and [checkpoint] tables of a pretraining config, checked once up front so that a
// typo fails before any work with the key named.

#include <nlohmann/json.hpp>

#include "nemokit/runtime/run/optimizer_options.hpp"
#include "nemokit/runtime/run/train_device.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace nemokit::pretrain {

struct PretrainOptions {
  int64_t seq_length = 0;
  int64_t micro_batch_size = 1;
  int64_t global_batch_size = 1;
  int64_t max_steps = 0;
  rt::OptimizerOptions optim = [] {
    rt::OptimizerOptions o;
    o.schedule = "wsd";
    return o;
  }();
  uint64_t seed = 1234;
  int64_t eval_interval = 0, eval_steps = 0, save_interval = 0, log_interval = 1;
  double moe_bias_update_rate = 1e-3, moe_aux_loss_coeff = 0.0;
  double mtp_loss_scaling_factor = 0.1;  // MTP loss weight (models with MTP layers), Megatron's name
  std::string sample_prompt;       // text generated from at the end (empty: none)
  int64_t sample_tokens = 48;
  double peak_tflops = 0;          // for MFU; 0 = unknown device peak, MFU not reported
  rt::Device device = rt::Device::cpu;  // train.device: where the steps run (run/train_device.hpp)

  std::filesystem::path checkpoint_dir;  // stable across runs, so a new run can resume
  bool resume = true;
  int64_t keep_checkpoints = 2;

  // Throws std::invalid_argument naming the key ("train.lr: expected a number").
  static PretrainOptions from_config(const nlohmann::json& config);
  int64_t accumulation_steps() const { return global_batch_size / micro_batch_size; }
};

}  // namespace nemokit::pretrain
