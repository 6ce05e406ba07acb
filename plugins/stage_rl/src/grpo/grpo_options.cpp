#include "grpo/grpo_options.hpp"

#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"
#include "nemokit/runtime/run/train_device.hpp"

#include <stdexcept>

namespace nemokit::rl {
using nlohmann::json;

int64_t GrpoOptions::updates_per_epoch() const {
  const int64_t g = global_batch_size > 0 ? global_batch_size : rollouts_per_step();
  return rollouts_per_step() / g;
}

GrpoOptions GrpoOptions::from_config(const json& config) {
  GrpoOptions o;
  if (!config.contains("grpo")) throw std::invalid_argument("grpo: the table is missing");
  rt::TableReader g(config["grpo"], "grpo");
  g.integer("num_prompts_per_step", o.num_prompts_per_step, 1);
  g.integer("num_generations_per_prompt", o.num_generations_per_prompt, 1);
  g.integer("max_new_tokens", o.max_new_tokens, 1);
  g.number("temperature", o.temperature);
  g.number("top_p", o.top_p);
  g.integer("top_k", o.top_k, 0);
  g.strings("stop_strings", o.stop_strings);
  g.boolean("enable_thinking", o.enable_thinking);
  g.number("clip_low", o.surrogate.clip_low);
  g.number("clip_high", o.surrogate.clip_high);
  g.number("kl_beta", o.surrogate.kl_beta);
  g.number("max_log_ratio", o.surrogate.max_log_ratio);
  std::string norm = "token", baseline = "mean";
  g.string("loss_normalization", norm);
  g.string("baseline", baseline);
  g.boolean("normalize_std", o.advantages.scale_by_std);
  g.integer("num_epochs", o.num_epochs, 1);
  g.no_unknown_keys();
  if (norm == "token") o.normalization = LossNormalization::Token;
  else if (norm == "sequence") o.normalization = LossNormalization::Sequence;
  else g.fail("loss_normalization", "expected \"token\" or \"sequence\", got \"" + norm + "\"");
  if (baseline == "mean") o.advantages.baseline = Baseline::Mean;
  else if (baseline == "leave_one_out") o.advantages.baseline = Baseline::LeaveOneOut;
  else g.fail("baseline", "expected \"mean\" or \"leave_one_out\", got \"" + baseline + "\"");
  if (o.temperature < 0) g.fail("temperature", "must not be negative");
  if (o.top_p <= 0 || o.top_p > 1) g.fail("top_p", "must be in (0, 1]");
  if (o.surrogate.clip_low < 0 || o.surrogate.clip_low >= 1) g.fail("clip_low", "must be in [0, 1)");
  if (o.surrogate.clip_high < 0) g.fail("clip_high", "must not be negative");
  if (o.surrogate.kl_beta < 0) g.fail("kl_beta", "must not be negative");
  if (o.surrogate.max_log_ratio <= 0) g.fail("max_log_ratio", "must be positive");

  if (!config.contains("train")) throw std::invalid_argument("train: the table is missing");
  rt::TableReader t(config["train"], "train");
  t.integer("max_steps", o.max_steps, 1);
  t.integer("micro_batch_size", o.micro_batch_size, 1);
  t.integer("global_batch_size", o.global_batch_size, 0);
  o.optim.read(t);
  t.number("moe_bias_update_rate", o.moe_bias_update_rate);
  int64_t seed = int64_t(o.seed);
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  t.integer("eval_interval", o.eval_interval, 0);
  t.integer("save_interval", o.save_interval, 0);
  t.integer("log_interval", o.log_interval, 1);
  t.strings("frozen", o.frozen);
  o.device = rt::read_train_device(t);
  t.no_unknown_keys();
  if (o.max_steps == 0) t.fail("max_steps", "required");
  if (o.global_batch_size > 0 && o.rollouts_per_step() % o.global_batch_size != 0)
    t.fail("global_batch_size", "must divide the rollouts of a step (grpo.num_prompts_per_step x num_generations_per_prompt = " +
                                    std::to_string(o.rollouts_per_step()) + ")");

  if (config.contains("eval")) {
    rt::TableReader e(config["eval"], "eval");
    e.integer("max_tasks", o.eval_max_tasks, 0);
    e.number("temperature", o.eval_temperature);
    e.integer("max_new_tokens", o.eval_max_new_tokens, 0);
    e.integer("samples", o.eval_samples, 0);
    e.integer("generations", o.eval_generations, 1);
    e.no_unknown_keys();
    if (o.eval_temperature < 0) e.fail("temperature", "must not be negative");
  }
  rt::read_checkpoint_table(config, o.checkpoint_dir, o.resume, o.keep_checkpoints);
  return o;
}

}  // namespace nemokit::rl
