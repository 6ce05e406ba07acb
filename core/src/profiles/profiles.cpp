#include "profiles/profiles.hpp"

#include "config/config.hpp"
#include "util/error.hpp"
#include "util/read_file.hpp"
#include "util/suggest.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace nemokit {
namespace fs = std::filesystem;

namespace {

enum class Kind { String, Integer, Boolean, StringList, StringTable };

// The keys of the Nemotron recipes' env.toml profiles (plus what nemokit's executors add).
const std::map<std::string, Kind>& known_keys() {
  static const std::map<std::string, Kind> keys = {
      {"executor", Kind::String},        {"account", Kind::String},         {"partition", Kind::String},
      {"run_partition", Kind::String},   {"batch_partition", Kind::String}, {"nodes", Kind::Integer},
      {"ntasks_per_node", Kind::Integer}, {"gpus_per_node", Kind::Integer}, {"cpus_per_task", Kind::Integer},
      {"gpu_memory", Kind::String},      {"mpi", Kind::String},
      {"nproc_per_node", Kind::Integer}, {"time", Kind::String},            {"mem", Kind::String},
      {"exclusive", Kind::Boolean},      {"mounts", Kind::StringList},      {"container_image", Kind::String},
      {"container", Kind::String},       {"env_vars", Kind::StringTable},   {"setup_lines", Kind::StringList},
      {"build_partition", Kind::String}, {"build_time", Kind::String},      {"build_cache_dir", Kind::String},
      {"job_root", Kind::String},        {"extends", Kind::String},         {"description", Kind::String},
  };
  return keys;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::String: return "a string";
    case Kind::Integer: return "an integer";
    case Kind::Boolean: return "true or false";
    case Kind::StringList: return "a list of strings";
    case Kind::StringTable: return "a table of strings";
  }
  return "";
}

bool has_kind(const toml::node& n, Kind k) {
  switch (k) {
    case Kind::String: return n.is_string();
    case Kind::Integer: return n.is_integer();
    case Kind::Boolean: return n.is_boolean();
    case Kind::StringList:
      return n.is_array() && std::all_of(n.as_array()->begin(), n.as_array()->end(), [](const toml::node& e) { return e.is_string(); });
    case Kind::StringTable:
      return n.is_table() && std::all_of(n.as_table()->begin(), n.as_table()->end(), [](auto&& kv) { return kv.second.is_string(); });
  }
  return false;
}

std::string where(const fs::path& file, const toml::node& n) {
  return file.string() + ":" + std::to_string(n.source().begin.line);
}

}  // namespace

bool is_secret_name(const std::string& name) {
  std::string up = name;
  std::transform(up.begin(), up.end(), up.begin(), ::toupper);
  for (const char* w : {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"})
    if (up.find(w) != std::string::npos) return true;
  return false;
}

bool ProfileSet::is_reserved_section(const std::string& name) {
  return name == "wandb" || name == "artifacts" || name == "cache" || name == "cli";
}

std::optional<fs::path> ProfileSet::locate(const fs::path& start) {
  if (const char* env = std::getenv("NEMOKIT_ENV"); env && *env) {
    if (!fs::exists(env)) throw UserError(std::string("NEMOKIT_ENV names ") + env + ", which does not exist");
    return fs::path(env);
  }
  std::error_code ec;
  for (fs::path dir = fs::absolute(start, ec);; dir = dir.parent_path()) {
    if (fs::is_regular_file(dir / "env.toml", ec)) return dir / "env.toml";
    if (dir == dir.root_path() || dir.empty()) break;
  }
  if (const char* home = std::getenv("HOME")) {
    fs::path p = fs::path(home) / ".config" / "nemokit" / "env.toml";
    if (fs::is_regular_file(p, ec)) return p;
  }
  return std::nullopt;
}

ProfileSet ProfileSet::load_default() {
  auto f = locate(fs::current_path());
  return f ? load(*f) : ProfileSet{};
}

ProfileSet ProfileSet::load(const fs::path& file) {
  toml::table doc;
  try {
    doc = toml::parse(read_file(file), file.string());
  } catch (const toml::parse_error& e) {
    throw UserError(file.string() + ":" + std::to_string(e.source().begin.line) + ":" +
                    std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
  ProfileSet set;
  set.file_ = file;
  std::map<std::string, const toml::table*> raw;
  for (auto&& [k, v] : doc) {
    std::string name(k.str());
    if (name == "artifacts") {
      if (!v.is_table()) throw UserError(where(file, v) + ": [artifacts] must be a table (root = \"/path/to/store\")");
      for (auto&& [key, val] : *v.as_table()) {
        if (key.str() != "root")
          throw UserError(where(file, val) + ": [artifacts]: unknown key \"" + std::string(key.str()) + "\" (known: root)");
        if (!val.is_string()) throw UserError(where(file, val) + ": [artifacts]: key \"root\" must be a string");
      }
      interpolate_env(*v.as_table(), file.string() + " [artifacts]");
      if (auto r = (*v.as_table())["root"].value<std::string>()) set.artifacts_root_ = *r;
      continue;
    }
    if (is_reserved_section(name)) continue;
    if (!v.is_table())
      throw UserError(where(file, v) + ": \"" + name + "\" must be a [profile] table (top-level keys are not allowed)");
    for (auto&& [key, val] : *v.as_table()) {
      auto it = known_keys().find(std::string(key.str()));
      if (it == known_keys().end()) {
        std::vector<std::string> keys;
        for (const auto& [known, _] : known_keys()) keys.push_back(known);
        throw UserError(where(file, val) + ": profile \"" + name + "\": unknown key \"" + std::string(key.str()) + "\"" +
                        did_you_mean(std::string(key.str()), keys));
      }
      if (!has_kind(val, it->second))
        throw UserError(where(file, val) + ": profile \"" + name + "\": key \"" + std::string(key.str()) + "\" must be " +
                        kind_name(it->second));
    }
    // Interpolate before merging: only the parsed nodes know their line for error messages.
    interpolate_env(*v.as_table(), file.string() + " [" + name + "]");
    raw[name] = v.as_table();
  }
  for (const auto& [name, table] : raw) {
    Profile p;
    p.name = name;
    p.file = file;
    std::vector<const toml::table*> layers;
    for (std::string cur = name;;) {
      if (std::find(p.chain.begin(), p.chain.end(), cur) != p.chain.end()) {
        std::string cycle;
        for (const auto& c : p.chain) cycle += c + " -> ";
        throw UserError(file.string() + ": profile \"" + name + "\": extends cycle: " + cycle + cur);
      }
      auto it = raw.find(cur);
      if (it == raw.end()) {
        const toml::node* ext = raw[p.chain.back()]->get("extends");
        throw UserError(where(file, *ext) + ": profile \"" + p.chain.back() + "\": extends \"" + cur + "\", which is not a profile in this file");
      }
      p.chain.push_back(cur);
      layers.push_back(it->second);
      const toml::node* ext = it->second->get("extends");
      if (!ext) break;
      cur = *ext->value<std::string>();
    }
    for (auto l = layers.rbegin(); l != layers.rend(); ++l)
      for (auto&& [k, v] : **l)
        if (k.str() != "extends") p.values.insert_or_assign(k.str(), v);
    set.profiles_.emplace(name, std::move(p));
  }
  return set;
}

std::vector<std::string> ProfileSet::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : profiles_) out.push_back(n);
  return out;
}

const Profile& ProfileSet::get(const std::string& name) const {
  auto it = profiles_.find(name);
  if (it != profiles_.end()) return it->second;
  if (file_.empty())
    throw UserError("profile \"" + name + "\": no env.toml found (set NEMOKIT_ENV, put env.toml in this folder or above, or in ~/.config/nemokit/)");
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  throw UserError(file_.string() + ": no profile \"" + name + "\" (profiles: " + (known.empty() ? "none" : known) + ")" +
                  did_you_mean(name, names()));
}

std::optional<std::string> Profile::str(const char* key) const {
  if (auto* n = values.get(key)) return n->value<std::string>();
  return std::nullopt;
}
std::optional<int64_t> Profile::integer(const char* key) const {
  if (auto* n = values.get(key)) return n->value<int64_t>();
  return std::nullopt;
}
std::optional<bool> Profile::boolean(const char* key) const {
  if (auto* n = values.get(key)) return n->value<bool>();
  return std::nullopt;
}
std::vector<std::string> Profile::strings(const char* key) const {
  std::vector<std::string> out;
  if (auto* n = values.get(key); n && n->is_array())
    for (const auto& e : *n->as_array()) out.push_back(*e.value<std::string>());
  return out;
}
std::map<std::string, std::string> Profile::env_vars() const {
  std::map<std::string, std::string> out;
  if (auto* n = values.get("env_vars"); n && n->is_table())
    for (auto&& [k, v] : *n->as_table()) out[std::string(k.str())] = *v.value<std::string>();
  return out;
}

}  // namespace nemokit
