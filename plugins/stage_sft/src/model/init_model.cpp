#include "model/init_model.hpp"

#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/json_file.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <optional>
#include <stdexcept>
#include <vector>

namespace nemokit::sft {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw std::invalid_argument(where + ": " + what); }

// A model folder itself, or the newest checkpoint of a checkpoint folder.
std::optional<fs::path> model_folder(const fs::path& p) {
  if (fs::exists(p / "config.json")) return p;
  if (fs::exists(p / "latest")) return rt::CheckpointDir(p, 0).latest();
  return std::nullopt;
}

// "stage:nano3/pretrain" -> the last COMPLETED job of that stage under `root`.
fs::path job_of_stage(const std::string& ref, const fs::path& root, const std::string& key) {
  std::string spec = ref.substr(6);
  std::vector<std::string> parts;
  for (size_t b = 0;;) {
    size_t e = spec.find('/', b);
    parts.push_back(spec.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
    bad(key, "\"" + ref + "\" should read stage:FAMILY/STAGE[/SUBSTAGE]");
  if (parts.size() == 2) parts.emplace_back();
  std::optional<std::pair<std::string, fs::path>> best;  // (created_at + name, folder)
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    fs::path meta_file = e.path() / "job.json";
    if (!fs::exists(meta_file)) continue;
    json meta;
    try {
      meta = rt::read_json_file(meta_file);
    } catch (const std::exception&) {
      continue;  // a job folder being written; not a candidate
    }
    if (meta.value("family", "") != parts[0] || meta.value("stage", "") != parts[1] || meta.value("substage", "") != parts[2] ||
        meta.value("state", "") != "COMPLETED" || meta.value("command", "run") != "run")
      continue;
    std::string key = meta.value("created_at", "") + e.path().filename().string();
    if (!best || key > best->first) best = std::make_pair(key, e.path());
  }
  if (!best)
    bad(key, "no completed job of " + spec + " in " + root.string() + " (run `nemokit run " + parts[0] + " " +
                               parts[1] + (parts[2].empty() ? "" : " " + parts[2]) + "` first)");
  return best->second;
}

}  // namespace

fs::path checkpoint_of_job(const fs::path& job) {
  fs::path ckpt_root = job / "checkpoints";
  fs::path config_file = job / "config.toml";
  if (fs::exists(config_file)) {
    toml::table t;
    try {
      t = toml::parse_file(config_file.string());
    } catch (const toml::parse_error& e) {
      throw std::runtime_error(config_file.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                               std::string(e.description()));
    }
    if (auto dir = t["checkpoint"]["dir"].value<std::string>()) ckpt_root = rt::expand_home(*dir);
  }
  auto m = model_folder(ckpt_root);
  if (!m) throw std::invalid_argument(job.string() + ": the job has no complete checkpoint in " + ckpt_root.string());
  return *m;
}

InitModel resolve_init_model(const json& config, const fs::path& job_dir) {
  // A fine-tuning stage's [model] table says where the model comes from and which encoders
  // join it ([model.vision], [model.audio]); the architecture is the model folder's config.json.
  if (config.contains("model") && config["model"].is_object())
    for (const auto& [key, value] : config["model"].items())
      if (key != "init_from" && key != "vision" && key != "audio")
        bad("model." + key, "unknown key (expected init_from, vision or audio; the architecture comes from the model's config.json)");
  const json* init = nullptr;
  if (config.contains("model") && config["model"].is_object() && config["model"].contains("init_from"))
    init = &config["model"]["init_from"];
  if (!init)
    bad("model.init_from",
        "required: the model to fine-tune (NAME:latest from the artifact store, a model or checkpoint folder, or stage:FAMILY/STAGE)");
  if (!init->is_string()) bad("model.init_from", "must be a string, got " + std::string(init->type_name()));
  return resolve_model(init->get<std::string>(), "model.init_from", job_dir);
}

fs::path tokenizer_of(const fs::path& model_dir) {
  for (const fs::path& candidate : {model_dir / "tokenizer.json", model_dir.parent_path() / "tokenizer.json"})
    if (fs::exists(candidate)) return candidate;
  throw std::invalid_argument(model_dir.string() + ": no tokenizer.json in the model folder or the folder above it");
}

InitModel resolve_model(const std::string& ref, const std::string& key, const fs::path& job_dir) {
  InitModel r;
  if (ref.rfind("stage:", 0) == 0) {
    fs::path root = job_dir.empty() ? fs::current_path() / ".nemokit" / "jobs" : job_dir.parent_path();
    fs::path job = job_of_stage(ref, root, key);
    r.dir = checkpoint_of_job(job);
    r.origin = ref + " (job " + job.string() + ")";
  } else {
    fs::path p = rt::expand_home(ref);
    if (!fs::exists(p)) bad(key, p.string() + " does not exist (train or import that model first)");
    auto m = model_folder(p);
    if (!m) bad(key, p.string() + " holds neither config.json nor a `latest` checkpoint");
    r.dir = *m;
    r.origin = p.string();
  }
  r.tokenizer = tokenizer_of(r.dir);
  return r;
}

}  // namespace nemokit::sft
