#include "eval_options.hpp"

#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <stdexcept>

namespace nemokit::eval {
using nlohmann::json;

namespace {

PerplexityOptions read_perplexity(const json& table) {
  PerplexityOptions o;
  rt::TableReader t(table, "perplexity");
  std::string data;
  t.string("data", data);
  if (data.empty()) t.fail("data", "required: the prepared pretraining data (a folder with blend.json)");
  o.data = rt::expand_home(data);
  t.string("split", o.split);
  if (o.split != "train" && o.split != "valid" && o.split != "test") t.fail("split", "\"" + o.split + "\" is not train, valid or test");
  t.integer("seq_length", o.seq_length, 0);
  t.integer("micro_batch_size", o.micro_batch_size, 1);
  t.integer("max_windows", o.max_windows, 0);
  int64_t seed = int64_t(o.seed);
  t.integer("seed", seed, 0);
  o.seed = uint64_t(seed);
  t.no_unknown_keys();
  return o;
}

TaskOptions read_tasks(const json& table) {
  TaskOptions o;
  rt::TableReader t(table, "tasks");
  const json* data = t.get("data");
  if (!data) t.fail("data", "required: a table with the task files as the RL stage's [data] names them (inputs, split, seed)");
  // output and name are data prep's, not the eval's: it splits the inputs itself.
  if (data->is_object())
    for (const char* k : {"output", "name"})
      if (data->contains(k)) throw std::invalid_argument(std::string("tasks.data.") + k + ": not read by the eval stage (it splits the inputs itself)");
  o.data = rl::RlPrepConfig::from_json(*data, "tasks.data");
  std::vector<std::string> use;
  t.strings("use", use);
  if (!use.empty()) {
    o.use.clear();
    for (const std::string& u : use) {
      int s = -1;
      for (int i = 0; i < 3; ++i)
        if (u == rl::kSplitNames[i]) s = i;
      if (s < 0) t.fail("use", "\"" + u + "\" is not train, val or test");
      o.use.push_back(s);
    }
  }
  t.integer("max_per_kind", o.max_per_kind, 0);
  t.integer("max_new_tokens", o.max_new_tokens, 1);
  t.boolean("enable_thinking", o.enable_thinking);
  t.strings("stop_strings", o.stop_strings);
  t.no_unknown_keys();
  return o;
}

ChatOptions read_chats(const json& table) {
  ChatOptions o;
  rt::TableReader t(table, "chats");
  std::string file;
  t.string("file", file);
  if (file.empty()) t.fail("file", "required: a JSONL of {kind, messages, expected, match}");
  o.file = rt::expand_home(file);
  t.integer("max_examples", o.max_examples, 0);
  t.integer("max_new_tokens", o.max_new_tokens, 1);
  t.boolean("enable_thinking", o.enable_thinking);
  t.no_unknown_keys();
  return o;
}

}  // namespace

EvalOptions EvalOptions::from_config(const json& config) {
  EvalOptions o;
  if (!config.contains("model")) throw std::invalid_argument("model: the table is missing (model.checkpoints names the models to evaluate)");
  rt::TableReader m(config["model"], "model");
  m.strings("checkpoints", o.checkpoints);
  m.no_unknown_keys();
  if (o.checkpoints.empty()) m.fail("checkpoints", "required: the models to evaluate (model or checkpoint folders, NAME:latest, stage:FAMILY/STAGE)");
  if (config.contains("perplexity")) o.perplexity = read_perplexity(config["perplexity"]);
  if (config.contains("tasks")) o.tasks = read_tasks(config["tasks"]);
  if (config.contains("chats")) o.chats = read_chats(config["chats"]);
  if (!o.perplexity && !o.tasks && !o.chats)
    throw std::invalid_argument("the config has none of [perplexity], [tasks] and [chats]: nothing to evaluate");
  if (config.contains("media")) {
    if (!config["media"].is_object()) throw std::invalid_argument("media: must be a table");
    o.media = config["media"];
  }
  if (config.contains("environments")) o.environments = config["environments"];
  return o;
}

}  // namespace nemokit::eval
