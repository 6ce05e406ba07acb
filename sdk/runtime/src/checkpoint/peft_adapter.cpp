#include "nemokit/runtime/peft_adapter.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/safetensors.hpp"

namespace nemokit::rt {
using json = nlohmann::json;

namespace {

struct Adapter {
  const Parameter* A;
  const Parameter* B;
};

// Module names in transformers 5: backbone.* -> model.*
std::string hf_module(const std::string& ours) {
  return ours.rfind("backbone.", 0) == 0 ? "model." + ours.substr(9) : ours;
}

// "<layer prefix>.experts.<e>.<proj>" -> (layer prefix, e, proj); false for other modules.
bool split_expert(const std::string& module, std::string& layer, int64_t& expert, std::string& proj) {
  const std::string key = ".experts.";
  auto pos = module.find(key);
  if (pos == std::string::npos) return false;
  std::string rest = module.substr(pos + key.size());
  auto dot = rest.find('.');
  if (dot == std::string::npos || dot == 0 || !std::all_of(rest.begin(), rest.begin() + dot, ::isdigit)) return false;
  layer = module.substr(0, pos);
  expert = std::stoll(rest.substr(0, dot));
  proj = rest.substr(dot + 1);
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One stacked projection of a layer's routed experts in PEFT's ParamWrapper layout.
void stack_experts(const std::map<int64_t, Adapter>& experts, int64_t num_experts, int64_t rank, Tensor& A,
                   Tensor& B) {
  const Adapter& any = experts.begin()->second;
  const int64_t in = any.A->value.size(1), out = any.B->value.size(0);
  A = Tensor::zeros({rank * num_experts, in});
  B = Tensor::zeros({out, rank * num_experts});
  for (const auto& [e, ad] : experts) {
    const float* a = ad.A->value.f32();
    const float* b = ad.B->value.f32();
    std::copy(a, a + rank * in, A.f32() + e * rank * in);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t j = 0; j < rank; ++j) B.f32()[o * rank * num_experts + j * num_experts + e] = b[o * rank + j];
  }
}

}  // namespace

PeftExport save_peft_adapter(NemotronH& model, const std::string& dir) {
  if (!model.has_lora()) throw std::invalid_argument(dir + ": the model has no LoRA adapters to export");
  const LoraConfig& cfg = model.lora_config();
  // Adapters by module, in parameter order.
  std::vector<std::string> order;
  std::map<std::string, Adapter> adapters;
  for (Parameter* p : model.parameters()) {
    for (const char* kind : {".lora_A.weight", ".lora_B.weight"}) {
      if (!ends_with(p->name, kind)) continue;
      std::string module = p->name.substr(0, p->name.size() - 14);
      if (!adapters.count(module)) order.push_back(module), adapters[module] = {nullptr, nullptr};
      (kind[6] == 'A' ? adapters[module].A : adapters[module].B) = p;
    }
  }

  PeftExport report;
  std::vector<NamedTensor> tensors;
  json target_modules = json::array(), target_parameters = json::array();
  // layer prefix -> proj -> expert -> adapter, and the order layers appear in
  std::map<std::string, std::map<std::string, std::map<int64_t, Adapter>>> stacked;
  std::vector<std::string> stacked_layers;
  for (const std::string& module : order) {
    const Adapter& ad = adapters[module];
    if (!ad.A || !ad.B) throw std::logic_error(module + ": LoRA adapter without both A and B");
    std::string layer, proj;
    int64_t expert = 0;
    if (split_expert(module, layer, expert, proj)) {
      if (!stacked.count(layer)) stacked_layers.push_back(layer);
      stacked[layer][proj][expert] = ad;
      continue;
    }
    if (ends_with(module, ".out_proj") && module.find(".mixer.") != std::string::npos &&
        model.find(module.substr(0, module.size() - 8) + "in_proj.weight")) {
      report.left_out.push_back(module);  // Mamba's out_proj
      continue;
    }
    const std::string name = "base_model.model." + hf_module(module);
    tensors.emplace_back(name + ".lora_A.weight", ad.A->value);
    tensors.emplace_back(name + ".lora_B.weight", ad.B->value);
    target_modules.push_back(hf_module(module));
  }
  const int64_t E = model.config().n_routed_experts;
  for (const std::string& layer : stacked_layers) {
    const auto& projs = stacked[layer];
    const bool nested = projs.size() > 1;
    // transformers registers up_proj before down_proj; PEFT wraps in that order, so the first
    // wrapper ends up inside (base_layer) when both are adapted.
    for (const char* proj : {"up_proj", "down_proj"}) {
      auto it = projs.find(proj);
      if (it == projs.end()) continue;
      Tensor A, B;
      stack_experts(it->second, E, cfg.rank, A, B);
      std::string where = "base_model.model." + hf_module(layer) + ".experts" +
                          (nested && std::string(proj) == "up_proj" ? ".base_layer" : "");
      tensors.emplace_back(where + ".lora_A.weight", A);
      tensors.emplace_back(where + ".lora_B.weight", B);
      target_parameters.push_back(hf_module(layer) + ".experts." + proj);
    }
    for (const auto& [proj, _] : projs)
      if (proj != "up_proj" && proj != "down_proj")
        throw std::logic_error(layer + ".experts: unexpected projection " + proj);
  }
  report.tensors = tensors.size();
  if (tensors.empty())
    throw std::invalid_argument(dir + ": none of the model's adapters can be loaded by PEFT (left out: " +
                                std::to_string(report.left_out.size()) + " Mamba out_proj adapters)");

  json config = lora_to_peft_json(cfg);
  config["target_modules"] = target_modules;
  if (!target_parameters.empty()) {
    config["target_parameters"] = target_parameters;
    config["lora_dropout"] = 0.0;  // PEFT's parameter wrappers refuse dropout; it plays no part in inference
  }
  std::string tmp = fresh_temp_dir(dir).string();
  write_file_atomic(tmp + "/adapter_config.json", config.dump(2) + "\n");
  write_safetensors(tmp + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  replace_dir_atomic(tmp, dir);
  return report;
}

}  // namespace nemokit::rt
