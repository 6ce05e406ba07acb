#pragma once
// What the eval stage measured, per model: rows of (metric, value, how many items or tokens),
// written as eval.json and printed side by side, one column per model.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::eval {

struct Row {
  std::string key;    // "perplexity/test", "tasks/all", "tasks/arithmetic", ...: the same across models
  std::string label;  // as the table shows it: "perplexity, test split", "  arithmetic"
  double value = 0;
  int64_t count = 0;  // what the value was measured on: `count` `unit` ("30592 tokens", "100 tasks")
  std::string unit;
  int precision = 3;  // digits after the point in the table
};

struct ModelResult {
  std::string label;          // the model's column heading
  std::filesystem::path dir;  // the model folder evaluated
  std::string origin;         // how the config named it
  double seconds = 0;
  std::vector<Row> rows;
  nlohmann::json to_json() const;  // {label, path, origin, seconds, metrics: {key: {value, count}}}
};

// A short name for a model folder: its last two folder names ("nano3-sft-tiny/step_0000800").
std::string model_label(const std::filesystem::path& dir);

// The table: one line per metric (in the order the models first give them), one column per
// model; a metric a model has not got shows "-".
std::string side_by_side(const std::vector<ModelResult>& models);

}  // namespace nemokit::eval
