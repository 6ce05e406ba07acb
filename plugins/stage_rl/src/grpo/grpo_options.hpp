#pragma once
// The [grpo], [train], [eval] and [checkpoint] tables of an RL config, checked up front so a typo
// fails before any work, naming the key.

#include "grpo/grpo_math.hpp"

#include "nemokit/runtime/run/optimizer_options.hpp"
#include "nemokit/runtime/tensor.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::rl {

struct GrpoOptions {
  // [grpo]
  int64_t num_prompts_per_step = 8;
  int64_t num_generations_per_prompt = 4;
  int64_t max_new_tokens = 64;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0;
  std::vector<std::string> stop_strings = {"<|im_end|>"};
  bool enable_thinking = false;  // the generation prompt opens a reasoning block
  AdvantageOptions advantages;
  SurrogateOptions surrogate;
  LossNormalization normalization = LossNormalization::Token;
  int64_t num_epochs = 1;  // optimization passes over each rollout batch

  // [train]
  int64_t max_steps = 0;  // GRPO steps (rollout batches)
  int64_t micro_batch_size = 8;   // sequences per forward
  int64_t global_batch_size = 0;  // sequences per optimizer update (0: the whole rollout batch)
  rt::OptimizerOptions optim = [] {  // the recipe's GRPO: a small constant rate, no decay
    rt::OptimizerOptions o;
    o.lr = 3e-6, o.min_lr = 3e-6, o.schedule = "constant", o.weight_decay = 0.0, o.adam_beta2 = 0.999;
    return o;
  }();
  double moe_bias_update_rate = 0.0;
  // Where the policy's passes, updates and the reference's scores run (rt::read_train_device);
  // rollouts and evaluations stay on the CPU model, brought up to date after each step's updates.
  rt::Device device = rt::Device::cpu;
  // Parameter-name prefixes that stay as they are (omni3: the encoders), e.g. "vision_model."
  std::vector<std::string> frozen;
  uint64_t seed = 1234;
  int64_t eval_interval = 0, save_interval = 0, log_interval = 1;

  // [eval]: reward on the val split
  int64_t eval_max_tasks = 200;
  double eval_temperature = 0.0;  // 0: greedy
  int64_t eval_generations = 1;   // answers per task, their rewards averaged (sampled evaluation)
  int64_t eval_max_new_tokens = 0;  // 0: grpo.max_new_tokens
  int64_t eval_samples = 3;       // answers shown per environment at the end

  // [checkpoint]
  std::filesystem::path checkpoint_dir;
  bool resume = true;
  int64_t keep_checkpoints = 2;

  static GrpoOptions from_config(const nlohmann::json& config);
  int64_t rollouts_per_step() const { return num_prompts_per_step * num_generations_per_prompt; }
  int64_t updates_per_epoch() const;
};

}  // namespace nemokit::rl
