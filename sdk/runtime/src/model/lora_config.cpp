#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "nemokit/runtime/json_file.hpp"
#include "nemokit/runtime/lora.hpp"
namespace nemokit::rt {
using json = nlohmann::json;

void LoraConfig::validate(const std::string& source) const {
  if (rank <= 0) throw std::invalid_argument(source + ": LoRA rank must be positive, got " + std::to_string(rank));
  if (!std::isfinite(alpha) || alpha <= 0)
    throw std::invalid_argument(source + ": LoRA alpha must be positive, got " + std::to_string(alpha));
  if (!(dropout >= 0 && dropout < 1))
    throw std::invalid_argument(source + ": LoRA dropout must be in [0, 1), got " + std::to_string(dropout));
  if (targets.empty()) throw std::invalid_argument(source + ": LoRA needs at least one target module");
  for (const auto& t : targets)
    if (t.empty() || t.front() == '.' || t.back() == '.')
      throw std::invalid_argument(source + ": LoRA target '" + t + "' is not a module name");
}

bool lora_target_matches(const std::string& module, const std::string& target) {
  if (module == target) return true;
  return module.size() > target.size() && module.compare(module.size() - target.size(), target.size(), target) == 0 &&
         module[module.size() - target.size() - 1] == '.';
}

json lora_to_peft_json(const LoraConfig& c) {
  json alpha = c.alpha;
  if (std::floor(c.alpha) == c.alpha && std::fabs(c.alpha) < 1e9f) alpha = int64_t(c.alpha);  // PEFT writes ints
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", c.base_model},
          {"r", c.rank},
          {"lora_alpha", alpha},
          {"lora_dropout", c.dropout},
          {"target_modules", c.targets},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"use_rslora", false},
          {"use_dora", false},
          {"init_lora_weights", true},
          {"inference_mode", true},
          {"modules_to_save", nullptr}};
}

LoraConfig lora_from_peft_json(const json& j, const std::string& source) {
  LoraConfig c;
  try {
    if (j.value("peft_type", std::string("LORA")) != "LORA")
      throw std::runtime_error(source + ": peft_type is '" + j["peft_type"].get<std::string>() + "', only LORA is supported");
    if (j.value("use_rslora", false) || j.value("use_dora", false))
      throw std::runtime_error(source + ": rsLoRA and DoRA adapters are not supported");
    c.rank = j.at("r").get<int64_t>();
    c.alpha = j.at("lora_alpha").get<float>();
    c.dropout = j.value("lora_dropout", 0.0f);
    const json& t = j.at("target_modules");
    if (t.is_string()) throw std::runtime_error(source + ": target_modules as a regular expression is not supported");
    c.targets = t.get<std::vector<std::string>>();
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      c.base_model = j["base_model_name_or_path"].get<std::string>();
  } catch (const json::exception& e) {
    throw std::runtime_error(source + ": " + json_error_text(e));
  }
  c.validate(source);
  return c;
}

std::optional<LoraConfig> read_adapter_config(const std::string& dir) {
  std::string path = dir + "/adapter_config.json";
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + json_error_text(e));
  }
  return lora_from_peft_json(j, path);
}

}  // namespace nemokit::rt
