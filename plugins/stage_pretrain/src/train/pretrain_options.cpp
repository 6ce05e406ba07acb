#include "train/pretrain_options.hpp"

#include <cstdlib>
#include <set>
#include <stdexcept>

namespace nemokit::pretrain {
using nlohmann::json;

std::filesystem::path expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home ? home : "/") / path.substr(path.size() > 1 ? 2 : 1);
  }
  return path;
}

namespace {
struct Reader {
  const json& table;
  std::string prefix;
  std::set<std::string> seen;

  const json* get(const char* key) {
    seen.insert(key);
    auto it = table.find(key);
    return it == table.end() ? nullptr : &*it;
  }
  [[noreturn]] void bad(const char* key, const char* want) {
    throw std::invalid_argument(prefix + "." + key + ": expected " + want);
  }
  void integer(const char* key, int64_t& out, int64_t min) {
    if (const json* v = get(key)) {
      if (!v->is_number_integer()) bad(key, "an integer");
      out = v->get<int64_t>();
      if (out < min) throw std::invalid_argument(prefix + "." + key + ": must be at least " + std::to_string(min));
    }
  }
  void number(const char* key, double& out) {
    if (const json* v = get(key)) {
      if (!v->is_number()) bad(key, "a number");
      out = v->get<double>();
    }
  }
  void string(const char* key, std::string& out) {
    if (const json* v = get(key)) {
      if (!v->is_string()) bad(key, "a string");
      out = v->get<std::string>();
    }
  }
  void boolean(const char* key, bool& out) {
    if (const json* v = get(key)) {
      if (!v->is_boolean()) bad(key, "true or false");
      out = v->get<bool>();
    }
  }
  void no_unknown_keys() {
    for (const auto& [k, _] : table.items())
      if (!seen.count(k)) throw std::invalid_argument(prefix + "." + k + ": unknown key");
  }
};
}  // namespace

PretrainOptions PretrainOptions::from_config(const json& config) {
  PretrainOptions o;
  if (!config.contains("train") || !config["train"].is_object()) throw std::invalid_argument("train: the table is missing");
  Reader t{config["train"], "train", {}};
  t.integer("seq_length", o.seq_length, 1);
  t.integer("micro_batch_size", o.micro_batch_size, 1);
  t.integer("global_batch_size", o.global_batch_size, 1);
  t.integer("max_steps", o.max_steps, 1);
  t.number("lr", o.lr);
  t.number("min_lr", o.min_lr);
  t.string("schedule", o.schedule);
  t.integer("warmup_steps", o.warmup_steps, 0);
  t.number("decay_fraction", o.decay_fraction);
  t.number("weight_decay", o.weight_decay);
  t.number("adam_beta1", o.adam_beta1);
  t.number("adam_beta2", o.adam_beta2);
  t.number("grad_clip", o.grad_clip);
  int64_t seed = 1234;
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  t.integer("eval_interval", o.eval_interval, 0);
  t.integer("eval_steps", o.eval_steps, 0);
  t.integer("save_interval", o.save_interval, 0);
  t.integer("log_interval", o.log_interval, 1);
  t.number("moe_bias_update_rate", o.moe_bias_update_rate);
  t.number("moe_aux_loss_coeff", o.moe_aux_loss_coeff);
  t.string("sample_prompt", o.sample_prompt);
  t.integer("sample_tokens", o.sample_tokens, 0);
  t.number("peak_tflops", o.peak_tflops);
  t.no_unknown_keys();
  if (o.seq_length == 0) throw std::invalid_argument("train.seq_length: required");
  if (o.max_steps == 0) throw std::invalid_argument("train.max_steps: required");
  if (o.global_batch_size % o.micro_batch_size != 0)
    throw std::invalid_argument("train.global_batch_size: must be a multiple of train.micro_batch_size (" +
                                std::to_string(o.micro_batch_size) + ")");
  if (o.schedule != "constant" && o.schedule != "cosine" && o.schedule != "wsd")
    throw std::invalid_argument("train.schedule: expected \"constant\", \"cosine\" or \"wsd\", got \"" + o.schedule + "\"");
  if (o.decay_fraction < 0 || o.decay_fraction > 1) throw std::invalid_argument("train.decay_fraction: must be in [0, 1]");

  if (config.contains("checkpoint")) {
    Reader c{config["checkpoint"], "checkpoint", {}};
    std::string dir;
    c.string("dir", dir);
    if (!dir.empty()) o.checkpoint_dir = expand_home(dir);
    c.boolean("resume", o.resume);
    c.integer("keep", o.keep_checkpoints, 1);
    c.no_unknown_keys();
  }
  return o;
}

}  // namespace nemokit::pretrain
