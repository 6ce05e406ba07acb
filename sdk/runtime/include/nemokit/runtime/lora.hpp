// LoRA (low-rank adaptation) settings and their file form, PEFT's adapter_config.json.
// An adapted projection computes y = x W^T + (alpha / rank) * dropout(x) A^T B^T with
// A [rank, in] and B [out, rank]; W stays frozen. Targets match module names (a parameter
// name without ".weight") the way PEFT's target_modules do: equal, or ending in "." + target.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nemokit::rt {

struct LoraConfig {
  int64_t rank = 16;
  float alpha = 32;
  float dropout = 0;                 // on the adapter's input, training forwards only
  std::vector<std::string> targets;  // module names or suffixes: "in_proj", "q_proj", "mixer.up_proj"
  uint64_t seed = 0;                 // A's initialization and the dropout masks
  std::string base_model;            // base_model_name_or_path in adapter_config.json

  float scale() const { return alpha / float(rank); }
  // Throws std::invalid_argument naming `source` and the bad field.
  void validate(const std::string& source) const;
};

// True when `module` is `target` or ends with "." + target.
bool lora_target_matches(const std::string& module, const std::string& target);

// adapter_config.json as PEFT writes it (peft_type LORA, task_type CAUSAL_LM).
nlohmann::json lora_to_peft_json(const LoraConfig& config);
// Reads r, lora_alpha, lora_dropout, target_modules; `source` names the file in errors.
LoraConfig lora_from_peft_json(const nlohmann::json& j, const std::string& source);
// DIR/adapter_config.json when the folder has one.
std::optional<LoraConfig> read_adapter_config(const std::string& dir);

}  // namespace nemokit::rt
