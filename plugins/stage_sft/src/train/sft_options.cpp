#include "train/sft_options.hpp"

#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <stdexcept>

namespace nemokit::sft {
using nlohmann::json;

SftOptions SftOptions::from_config(const json& config) {
  SftOptions o;
  if (!config.contains("train")) throw std::invalid_argument("train: the table is missing");
  rt::TableReader t(config["train"], "train");
  t.integer("micro_batch_size", o.micro_batch_size, 1);
  t.integer("global_batch_size", o.global_batch_size, 1);
  t.integer("max_steps", o.max_steps, 1);
  o.optim.read(t);
  int64_t seed = int64_t(o.seed);
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  std::string norm = "token";
  t.string("loss_normalization", norm);
  if (norm == "token") o.loss_normalization = LossNormalization::Token;
  else if (norm == "sample") o.loss_normalization = LossNormalization::Sample;
  else t.fail("loss_normalization", "expected \"token\" or \"sample\", got \"" + norm + "\"");
  t.integer("eval_interval", o.eval_interval, 0);
  t.integer("eval_steps", o.eval_steps, 0);
  t.integer("save_interval", o.save_interval, 0);
  t.integer("log_interval", o.log_interval, 1);
  t.number("moe_bias_update_rate", o.moe_bias_update_rate);
  t.number("moe_aux_loss_coeff", o.moe_aux_loss_coeff);
  t.strings("train_only", o.train_only);
  t.strings("frozen", o.frozen);
  t.strings("trained", o.trained);
  o.device = rt::read_train_device(t);
  t.no_unknown_keys();
  if (o.max_steps == 0) t.fail("max_steps", "required");
  if (o.global_batch_size % o.micro_batch_size != 0)
    t.fail("global_batch_size", "must be a multiple of train.micro_batch_size (" + std::to_string(o.micro_batch_size) + ")");

  if (config.contains("eval")) {
    rt::TableReader e(config["eval"], "eval");
    std::string file;
    e.string("file", file);
    if (!file.empty()) o.eval_file = rt::expand_home(file);
    e.integer("max_examples", o.eval_max_examples, 0);
    e.integer("max_new_tokens", o.eval_max_new_tokens, 1);
    e.integer("samples", o.eval_samples, 0);
    e.no_unknown_keys();
  }
  if (config.contains("lora")) {
    rt::TableReader l(config["lora"], "lora");
    l.boolean("enabled", o.lora);
    l.integer("rank", o.lora_rank, 1);
    l.number("alpha", o.lora_alpha);
    l.number("dropout", o.lora_dropout);
    l.strings("targets", o.lora_targets);
    l.no_unknown_keys();
    if (o.lora_dropout < 0 || o.lora_dropout >= 1) l.fail("dropout", "must be in [0, 1)");
    if (o.lora && o.lora_targets.empty()) l.fail("targets", "name at least one linear layer (e.g. \"q_proj\")");
  }
  rt::read_checkpoint_table(config, o.checkpoint_dir, o.resume, o.keep_checkpoints);
  return o;
}

}  // namespace nemokit::sft
