#include "train/pretrain_options.hpp"

#include "nemokit/runtime/run/table_reader.hpp"

#include <stdexcept>

namespace nemokit::pretrain {
using nlohmann::json;

PretrainOptions PretrainOptions::from_config(const json& config) {
  PretrainOptions o;
  if (!config.contains("train") || !config["train"].is_object()) throw std::invalid_argument("train: the table is missing");
  rt::TableReader t(config["train"], "train");
  t.integer("seq_length", o.seq_length, 1);
  t.integer("micro_batch_size", o.micro_batch_size, 1);
  t.integer("global_batch_size", o.global_batch_size, 1);
  t.integer("max_steps", o.max_steps, 1);
  o.optim.read(t);
  int64_t seed = 1234;
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  t.integer("eval_interval", o.eval_interval, 0);
  t.integer("eval_steps", o.eval_steps, 0);
  t.integer("save_interval", o.save_interval, 0);
  t.integer("log_interval", o.log_interval, 1);
  t.number("moe_bias_update_rate", o.moe_bias_update_rate);
  t.number("moe_aux_loss_coeff", o.moe_aux_loss_coeff);
  t.number("mtp_loss_scaling_factor", o.mtp_loss_scaling_factor);
  t.string("sample_prompt", o.sample_prompt);
  t.integer("sample_tokens", o.sample_tokens, 0);
  t.number("peak_tflops", o.peak_tflops);
  o.device = rt::read_train_device(t);
  t.no_unknown_keys();
  if (o.seq_length == 0) throw std::invalid_argument("train.seq_length: required");
  if (o.max_steps == 0) throw std::invalid_argument("train.max_steps: required");
  if (o.mtp_loss_scaling_factor < 0) throw std::invalid_argument("train.mtp_loss_scaling_factor: must not be negative");
  if (o.global_batch_size % o.micro_batch_size != 0)
    throw std::invalid_argument("train.global_batch_size: must be a multiple of train.micro_batch_size (" +
                                std::to_string(o.micro_batch_size) + ")");

  rt::read_checkpoint_table(config, o.checkpoint_dir, o.resume, o.keep_checkpoints);
  return o;
}

}  // namespace nemokit::pretrain
