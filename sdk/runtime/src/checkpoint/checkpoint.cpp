#include "nemokit/runtime/checkpoint.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/json_file.hpp"
#include "nemokit/runtime/safetensors.hpp"

namespace nemokit::rt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

constexpr const char* kHead = "lm_head.weight";
constexpr const char* kEmbeddings = "backbone.embeddings.weight";

// transformers' NemotronH never ties its head to the embeddings (tie_word_embeddings or not), so
// a tied model's folder carries the head as its own tensor, a copy of the embeddings: then
// from_pretrained finds every weight and computes the logits nemokit computes.
// Under expert parallel, the whole model in checkpoint order: this rank's tensors and the other
// ranks' experts from `remote` (gather_remote_experts).
std::vector<NamedTensor> model_tensors(NemotronH& model, DType dtype = DType::f32, const RemoteExperts& remote = {}) {
  auto stored = [dtype](const Tensor& t) { return dtype == DType::f32 ? t : t.to(dtype); };
  std::vector<NamedTensor> out;
  if (model.expert_comm()) {
    std::map<std::string, const Tensor*> theirs;
    for (const auto& [name, t] : remote.weights) theirs.emplace(name, &t);
    for (const ParamSlot& slot : model.parameter_layout()) {
      if (slot.local) {
        out.emplace_back(slot.name, stored(slot.local->value));
        continue;
      }
      auto it = theirs.find(slot.name);
      if (it == theirs.end())
        throw std::logic_error("saving a model whose experts are split over ranks: " + slot.name + " is on rank " +
                               std::to_string(slot.owner) + "; gather_remote_experts() on every rank first");
      out.emplace_back(slot.name, stored(*it->second));
    }
  } else {
    for (Parameter* p : model.parameters()) out.emplace_back(p->name, stored(p->value));
  }
  if (model.config().tie_word_embeddings) out.emplace_back(kHead, stored(model.find(kEmbeddings)->value));
  return out;
}

// AdamW's moments; under expert parallel every expert's, in checkpoint order, as one rank lists them.
std::vector<NamedTensor> optimizer_tensors(NemotronH& model, const AdamW& optimizer, const RemoteExperts& remote) {
  std::vector<NamedTensor> mine = optimizer.state_tensors();
  if (!model.expert_comm()) return mine;
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : mine) by_name.emplace(name, &t);
  for (const auto& [name, t] : remote.moments) by_name.emplace(name, &t);
  std::vector<NamedTensor> out;
  for (const ParamSlot& slot : model.parameter_layout())
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"})
      if (auto it = by_name.find(slot.name + suffix); it != by_name.end()) out.emplace_back(it->first, *it->second);
  return out;
}

json config_json(NemotronH& model, DType dtype) {
  json j = model.config().to_json();
  j["torch_dtype"] = dtype == DType::bf16 ? "bfloat16" : "float32";
  if (j.contains("dtype")) j["dtype"] = j["torch_dtype"];  // transformers 5 spelling, when present
  return j;
}

// A LoRA model's folder also says how to rebuild its adapters (PEFT's adapter_config.json).
void write_adapter_config(NemotronH& model, const std::string& dir) {
  if (model.has_lora()) write_file_atomic(dir + "/adapter_config.json", lora_to_peft_json(model.lora_config()).dump(2) + "\n");
}

std::string begin_dir(const std::string& dir) { return fresh_temp_dir(dir).string(); }

void write_weights(const std::string& dir, const std::vector<NamedTensor>& tensors, uint64_t max_shard_bytes) {
  std::vector<std::vector<NamedTensor>> shards(1);
  uint64_t current = 0, total = 0;
  for (const auto& nt : tensors) {
    if (current > 0 && current + nt.second.nbytes() > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += nt.second.nbytes();
    total += nt.second.nbytes();
  }
  const json meta = {{"format", "pt"}};
  if (shards.size() == 1) {
    write_safetensors(dir + "/model.safetensors", shards[0], meta);
    return;
  }
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string name = shard_name(i, shards.size());
    write_safetensors(dir + "/" + name, shards[i], meta);
    for (const auto& nt : shards[i]) weight_map[nt.first] = name;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
}

// All tensors of a model folder, by Hub name, with the file each lives in.
struct WeightSource {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::pair<const SafetensorsFile*, std::string>> by_name;  // hub name -> (file, stored name)
};

std::string hub_name(const std::string& stored) {
  if (stored.rfind("model.", 0) == 0) return "backbone." + stored.substr(6);
  return stored;
}

WeightSource open_weights(const std::string& dir) {
  WeightSource src;
  std::vector<std::string> names;
  std::string index_path = dir + "/model.safetensors.index.json";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path);
    json index;
    try {
      index = json::parse(in);
    } catch (const json::exception& e) {
      throw std::runtime_error(index_path + ": invalid JSON: " + json_error_text(e));
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object())
      throw std::runtime_error(index_path + ": key 'weight_map' missing or not an object");
    std::set<std::string> files;
    for (auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) throw std::runtime_error(index_path + ": weight_map entry '" + name + "' is not a file name");
      std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f == ".." || f.empty())
        throw std::runtime_error(index_path + ": weight_map entry '" + name + "' names a file outside the folder: " + f);
      files.insert(f);
    }
    for (const auto& f : files) names.push_back(dir + "/" + f);
  } else if (fs::exists(dir + "/model.safetensors")) {
    names.push_back(dir + "/model.safetensors");
  } else {
    throw std::runtime_error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& path : names) {
    src.files.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(path)));
    for (const auto& e : src.files.back()->entries()) {
      std::string hub = hub_name(e.name);
      if (src.by_name.count(hub)) throw std::runtime_error(path + ": tensor '" + e.name + "' appears twice in " + dir);
      src.by_name[hub] = {src.files.back().get(), e.name};
    }
  }
  return src;
}

void copy_into(Parameter* p, const Tensor& t, const std::string& file, const std::string& stored) {
  if (t.shape() != p->value.shape())
    throw std::runtime_error(file + ": tensor '" + stored + "' has shape " + t.shape_string() + ", the model needs " +
                             p->value.shape_string());
  std::copy(t.f32(), t.f32() + t.numel(), p->value.f32());
}

Tensor load_tensor(const WeightSource& src, const std::string& name) {
  const auto& [file, stored] = src.by_name.at(name);
  return file->load_f32(stored);
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.f32(), a.f32() + a.numel(), b.f32());
}

// A folder whose config ties the head but whose lm_head.weight is not the embeddings: what
// transformers saves after training a tied config, since it never ties them.
bool head_trained_apart(const WeightSource& src) {
  if (!src.by_name.count(kHead) || !src.by_name.count(kEmbeddings)) return false;
  return !same_values(load_tensor(src, kHead), load_tensor(src, kEmbeddings));
}

std::vector<NamedTensor> load_from(NemotronH& model, const WeightSource& src, const std::string& dir,
                                   const std::vector<std::string>& extra) {
  std::set<std::string> used;
  std::vector<NamedTensor> extras;
  for (const std::string& name : extra) {
    auto it = src.by_name.find(name);
    if (it == src.by_name.end()) throw std::runtime_error(dir + ": tensor '" + name + "' is missing from the checkpoint");
    extras.emplace_back(name, it->second.first->load_f32(it->second.second));
    used.insert(name);
  }
  for (Parameter* p : model.parameters()) {
    auto it = src.by_name.find(p->name);
    if (it != src.by_name.end()) {
      const auto& [file, stored] = it->second;
      copy_into(p, file->load_f32(stored), file->path(), stored);
      used.insert(p->name);
      continue;
    }
    // transformers 5 stacks experts: ...experts.up_proj [E, out, in] instead of ...experts.e.up_proj.weight
    auto pos = p->name.find(".experts.");
    if (pos != std::string::npos) {
      std::string rest = p->name.substr(pos + 9);  // "<e>.<proj>.weight"
      size_t dot = rest.find('.');
      int64_t e = std::stoll(rest.substr(0, dot));
      std::string proj = rest.substr(dot + 1, rest.rfind(".weight") - dot - 1);
      std::string stacked = p->name.substr(0, pos) + ".experts." + proj;
      auto st = src.by_name.find(stacked);
      if (st != src.by_name.end()) {
        const auto& [file, stored] = st->second;
        Tensor all = file->load_f32(stored);
        if (all.dim() != 3 || e >= all.size(0))
          throw std::runtime_error(file->path() + ": tensor '" + stored + "' has shape " + all.shape_string() +
                                   ", expected [experts, out, in]");
        Tensor one = Tensor::empty({all.size(1), all.size(2)});
        std::copy(all.f32() + e * one.numel(), all.f32() + (e + 1) * one.numel(), one.f32());
        copy_into(p, one, file->path(), stored);
        used.insert(stacked);
        continue;
      }
    }
    throw std::runtime_error(dir + ": tensor '" + p->name + "' is missing from the checkpoint");
  }
  // Expert parallel: the other ranks' experts are theirs to load.
  for (const ParamSlot& slot : model.parameter_layout())
    if (!slot.local) used.insert(slot.name);
  if (model.config().tie_word_embeddings && src.by_name.count(kHead)) {
    const auto& [file, stored] = src.by_name.at(kHead);
    if (!same_values(file->load_f32(stored), model.find(kEmbeddings)->value))
      throw std::runtime_error(file->path() + ": tensor '" + stored + "' differs from " + kEmbeddings +
                               ", but this model ties its head to the embeddings");
    used.insert(kHead);
  }
  for (const auto& [name, where] : src.by_name)
    if (!used.count(name) && name.rfind("mtp.", 0) != 0)
      throw std::runtime_error(where.first->path() + ": tensor '" + where.second + "' is not a parameter of this model");
  return extras;
}

}  // namespace

void save_pretrained(NemotronH& model, const std::string& dir, uint64_t max_shard_bytes, DType dtype,
                     const std::vector<NamedTensor>& extra) {
  if (dtype != DType::f32 && dtype != DType::bf16)
    throw std::invalid_argument(dir + ": weights are saved as F32 or BF16, not " + dtype_name(dtype));
  std::string tmp = begin_dir(dir);
  write_file_atomic(tmp + "/config.json", config_json(model, dtype).dump(2) + "\n");
  write_adapter_config(model, tmp);
  std::vector<NamedTensor> tensors = model_tensors(model, dtype);
  for (const auto& [name, t] : extra) {
    if (model.find(name)) throw std::invalid_argument(dir + ": extra tensor '" + name + "' is a model parameter's name");
    tensors.emplace_back(name, dtype == DType::f32 || t.dtype() != DType::f32 ? t : t.to(dtype));
  }
  write_weights(tmp, tensors, max_shard_bytes);
  replace_dir_atomic(tmp, dir);
}

std::vector<NamedTensor> load_weights(NemotronH& model, const std::string& dir, const std::vector<std::string>& extra) {
  return load_from(model, open_weights(dir), dir, extra);
}

std::unique_ptr<NemotronH> load_pretrained(const std::string& dir, Communicator* experts, int expert_parallel) {
  NemotronHConfig config = NemotronHConfig::load(dir + "/config.json");
  config.check_fits_in_memory(dir + "/config.json");
  WeightSource src = open_weights(dir);
  // The logits transformers computes from this folder come from its lm_head.weight.
  if (config.tie_word_embeddings && head_trained_apart(src)) config.tie_word_embeddings = false;
  auto model = std::make_unique<NemotronH>(config, experts, expert_parallel);
  if (auto lora = read_adapter_config(dir)) model->add_lora(*lora);
  load_from(*model, src, dir, {});
  return model;
}

void save_training_checkpoint(const std::string& dir, NemotronH& model, const AdamW& optimizer, const TrainerState& state,
                              const Tokenizer* tokenizer, uint64_t max_shard_bytes, const RemoteExperts& remote) {
  std::string tmp = begin_dir(dir);
  write_file_atomic(tmp + "/config.json", config_json(model, DType::f32).dump(2) + "\n");
  write_adapter_config(model, tmp);
  if (tokenizer) {
    tokenizer->save(tmp + "/tokenizer.json");
    write_file_atomic(tmp + "/tokenizer_config.json", tokenizer_config_json(*tokenizer, model.config()).dump(2) + "\n");
  }
  write_weights(tmp, model_tensors(model, DType::f32, remote), max_shard_bytes);
  write_safetensors(tmp + "/optimizer.safetensors", optimizer_tensors(model, optimizer, remote), {{"format", "pt"}});
  json js = {{"step", state.step},
             {"optimizer_steps", optimizer.steps()},
             // a decimal string: JSON numbers lose bits above 2^53 in many readers
             {"rng_state", std::to_string(state.rng_state)},
             {"data_position", state.data_position},
             {"data_source", state.data_source},
             {"extra", state.extra}};
  if (model.has_lora())  // the dropout masks continue where they stopped
    js["lora"] = {{"seed", std::to_string(model.lora_config().seed)}, {"dropout_counter", model.lora_dropout_counter()}};
  write_file_atomic(tmp + "/trainer_state.json", js.dump(2) + "\n");
  replace_dir_atomic(tmp, dir);
}

// Refuses to resume a checkpoint of another model: the same tensors could load into a model
// whose config differs (rope theta, norm eps, the layer pattern with equal shapes) and train on
// as something it is not; different shapes would fail later with a tensor name and no cause.
static void check_same_model(const std::string& dir, NemotronH& model) {
  if (!fs::exists(dir + "/config.json")) return;  // load_weights names what is missing
  const json saved = read_json_file(dir + "/config.json");
  const json now = config_json(model, DType::f32);
  std::string diffs;
  int shown = 0;
  auto note = [&](const std::string& key, const json& a, const json& b) {
    if (key == "torch_dtype" || key == "dtype" || shown == 4) return;
    diffs += (shown++ ? "; " : "") + key + ": " + (a.is_null() ? "absent" : a.dump()) + " in the checkpoint, " +
             (b.is_null() ? "absent" : b.dump()) + " in the config";
  };
  for (const auto& [k, v] : saved.items())
    if (!now.contains(k) || now[k] != v) note(k, v, now.contains(k) ? now[k] : json());
  for (const auto& [k, v] : now.items())
    if (!saved.contains(k)) note(k, json(), v);
  if (!diffs.empty())
    throw std::runtime_error("resuming from " + dir + ": the checkpoint holds another model than the config's (" + diffs +
                             "): point checkpoint.dir elsewhere, or set checkpoint.resume = false, to start over");
}

TrainerState load_training_checkpoint(const std::string& dir, NemotronH& model, AdamW& optimizer) {
  check_same_model(dir, model);
  const bool lora_dir = fs::exists(dir + "/adapter_config.json");
  if (lora_dir != model.has_lora())
    throw std::runtime_error(dir + "/adapter_config.json: " +
                             (lora_dir ? std::string("the checkpoint has LoRA adapters but the model has none "
                                                     "(build the model with load_pretrained, which adds them)")
                                       : std::string("missing, but the model has LoRA adapters")));
  load_weights(model, dir);
  std::string path = dir + "/trainer_state.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  json js;
  try {
    js = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + json_error_text(e));
  }
  TrainerState state;
  try {
    state.step = js.at("step").get<int64_t>();
    state.rng_state = std::stoull(js.at("rng_state").get<std::string>());
    state.data_position = js.value("data_position", json::object());
    state.extra = js.value("extra", json::object());
    state.data_source = js.value("data_source", json::object());
    if (model.has_lora() && js.contains("lora"))
      model.restore_lora_dropout(std::stoull(js["lora"].at("seed").get<std::string>()),
                                 js["lora"].at("dropout_counter").get<uint64_t>());
    auto opt = SafetensorsFile::open(dir + "/optimizer.safetensors");
    optimizer.load_state(opt, js.at("optimizer_steps").get<int64_t>());
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": " + json_error_text(e));
  }
  return state;
}

}  // namespace nemokit::rt
