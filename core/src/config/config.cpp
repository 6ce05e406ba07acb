#include "config/config.hpp"

#include "config/yaml_config.hpp"
#include "exec/job_shape.hpp"
#include "util/error.hpp"
#include "util/read_file.hpp"
#include "util/suggest.hpp"

#include "nemokit/runtime/utf8.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>

namespace nemokit {
namespace fs = std::filesystem;

namespace {

std::string at(const toml::source_region& src) {
  if (!src.path) return "set on the command line";
  std::string s(*src.path);
  if (src.begin.line) s += ":" + std::to_string(src.begin.line);
  return s;
}

toml::table parse_toml(const std::string& text, const std::string& origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw UserError(origin + ":" + std::to_string(e.source().begin.line) + ":" + std::to_string(e.source().begin.column) +
                    ": " + std::string(e.description()));
  }
}

// Every key of the config as an override spells it (train, train.lr, ...), for suggesting the one
// a misspelt override meant.
void collect_key_paths(const toml::table& t, const std::string& prefix, std::vector<std::string>& out) {
  for (auto&& [k, v] : t) {
    std::string path = prefix + std::string(k.str());
    out.push_back(path);
    if (v.is_table()) collect_key_paths(*v.as_table(), path + ".", out);
  }
}

std::vector<std::string> key_paths(const toml::table& config) {
  std::vector<std::string> out;
  collect_key_paths(config, "", out);
  return out;
}

// dst <- src, tables merged key by key, anything else replaced. Nodes are moved, never copied:
// toml++ keeps a node's source (file and line) only across moves, and errors need it.
void deep_merge(toml::table& dst, toml::table&& src) {
  for (auto&& [k, v] : src) {
    toml::node* existing = dst.get(k.str());
    if (existing && existing->is_table() && v.is_table()) {
      deep_merge(*existing->as_table(), std::move(*v.as_table()));
    } else {
      dst.insert_or_assign(k.str(), std::move(v));
    }
  }
}

struct Loader {
  const StageEntry& stage;
  std::vector<std::string> stack;  // origins being loaded, for cycle detection
  std::vector<std::string> chain;

  // Where relative `defaults` paths resolve: a folder on disk, or a folder inside the plugin's
  // resources (for configs the stage ships).
  struct Base {
    bool in_plugin = false;
    fs::path dir;
  };

  std::tuple<std::string, std::string, Base> fetch(const std::string& ref, const Base& base) {
    bool is_path = ref.find('/') != std::string::npos || ref.ends_with(".toml") || is_yaml_name(ref);
    if (is_path && base.in_plugin) {
      fs::path res = (base.dir / ref).lexically_normal();
      if (res.empty() || *res.begin() == "..")
        throw UserError(stage.plugin->path.filename().string() + ": config path \"" + ref + "\" leaves the plugin's resources");
      auto text = stage.plugin->resource(res.generic_string());
      if (!text) throw UserError(stage.plugin->path.filename().string() + ": no config resource " + res.generic_string());
      return {*text, stage.plugin->path.filename().string() + ":" + res.generic_string(), Base{true, res.parent_path()}};
    }
    if (is_path) {
      fs::path p = fs::path(ref).is_absolute() || base.dir.empty() ? fs::path(ref) : base.dir / ref;
      std::error_code ec;
      if (!fs::is_regular_file(p, ec)) throw UserError(p.string() + ": config file not found");
      return {read_file(p), p.lexically_normal().string(), Base{false, p.parent_path()}};
    }
    auto it = stage.configs.find(ref);
    if (it == stage.configs.end()) {
      std::string names;
      std::vector<std::string> shipped;
      for (const auto& [n, _] : stage.configs) {
        names += (names.empty() ? "" : ", ") + n;
        shipped.push_back(n);
      }
      throw UserError("config \"" + ref + "\" is not one that " + stage.triple() + " ships (" +
                      (names.empty() ? "it ships none" : "it ships: " + names) + "); give a path to use your own file" +
                      did_you_mean(ref, shipped));
    }
    auto text = stage.plugin->resource(it->second);
    if (!text) throw UserError(stage.plugin->path.string() + ": resource " + it->second + " is missing");
    return {*text, stage.plugin->path.filename().string() + ":" + it->second,
            Base{true, fs::path(it->second).parent_path()}};
  }

  toml::table load(const std::string& ref, const Base& base) {
    auto [text, origin, folder] = fetch(ref, base);
    if (std::find(stack.begin(), stack.end(), origin) != stack.end()) {
      std::string cycle;
      for (const auto& s : stack) cycle += s + " -> ";
      throw UserError("config inheritance cycle: " + cycle + origin);
    }
    stack.push_back(origin);
    toml::table own = parse_toml(is_yaml_name(origin) ? yaml_to_toml_text(text, origin) : text, origin);
    toml::table result;
    if (toml::node* d = own.get("defaults")) {
      std::vector<std::string> parents;
      if (d->is_string()) {
        parents.push_back(*d->value<std::string>());
      } else if (d->is_array()) {
        for (const toml::node& e : *d->as_array()) {
          if (!e.is_string()) throw UserError(at(e.source()) + ": defaults: every entry must be a config name or path");
          // `_self_` (Hydra's marker for where this file's own keys go) is where they go anyway:
          // after every parent.
          if (*e.value<std::string>() != "_self_") parents.push_back(*e.value<std::string>());
        }
      } else {
        throw UserError(at(d->source()) + ": defaults must be a list of config names or paths");
      }
      for (const auto& parent : parents) deep_merge(result, load(parent, folder));
      own.erase("defaults");
    }
    deep_merge(result, std::move(own));
    chain.push_back(origin);
    stack.pop_back();
    return result;
  }
};

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

// Parses `text` as a TOML value; nullopt when it is not one.
std::optional<toml::table> parse_value(const std::string& text) {
  try {
    return toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

}  // namespace

ResolvedConfig load_stage_config(const StageEntry& stage, const std::string& ref) {
  Loader l{stage, {}, {}};
  ResolvedConfig rc;
  rc.table = l.load(ref, Loader::Base{false, fs::current_path()});
  rc.chain = l.chain;
  return rc;
}

void check_config_tables(const StageEntry& stage, const toml::table& config, const std::string& where) {
  if (stage.tables.empty()) return;
  for (const auto& [key, value] : config) {
    const std::string name(key.str());
    // [artifact] (the name the stage publishes under) is the core's, for every stage.
    if (!value.is_table() || std::ranges::count(stage.tables, name) || name == "artifact") continue;
    std::string list;
    for (const auto& t : stage.tables) list += (list.empty() ? "[" : ", [") + t + "]";
    throw UserError(where + ": table [" + name + "] (" + at(value.source()) + ") is not read by " + stage.triple() +
                    ", which reads " + list + did_you_mean(name, stage.tables));
  }
}

void apply_overrides(toml::table& config, const std::vector<std::string>& overrides) {
  for (const std::string& ov : overrides) {
    // Configs travel as JSON (to the stage plugin, into job.json), which must be UTF-8.
    if (size_t bad = rt::invalid_utf8_at(ov); bad != std::string::npos)
      throw UserError("override \"" + ov.substr(0, bad) + "...\": not valid UTF-8 at byte " + std::to_string(bad + 1));
    bool add = ov.starts_with("+");
    std::string body = add ? ov.substr(1) : ov;
    size_t eq = body.find('=');
    if (eq == std::string::npos || eq == 0) throw UserError("override \"" + ov + "\": expected key.sub=value");
    std::string key = body.substr(0, eq), text = body.substr(eq + 1);
    std::vector<std::string> parts;
    std::stringstream ss(key);
    for (std::string p; std::getline(ss, p, '.');) {
      if (p.empty()) throw UserError("override \"" + ov + "\": empty key segment in \"" + key + "\"");
      parts.push_back(p);
    }
    toml::table* t = &config;
    std::string path;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      path += (path.empty() ? "" : ".") + parts[i];
      toml::node* n = t->get(parts[i]);
      if (!n) {
        if (!add && !(i == 0 && parts[0] == "run" && parts.size() == 2))
          throw UserError("override \"" + ov + "\": no key \"" + path + "\" in the config (write +" + key + "=... to add one)" +
                          did_you_mean(key, key_paths(config)));
        t->insert_or_assign(parts[i], toml::table{});
        n = t->get(parts[i]);
      }
      if (!n->is_table()) throw UserError("override \"" + ov + "\": \"" + path + "\" is " + type_name(*n) + ", not a table");
      t = n->as_table();
    }
    const std::string& leaf = parts.back();
    toml::node* old = t->get(leaf);
    // Every execution key may be set on any stage (run.partition=batch): the stage configs only
    // carry the few their recipe sets. Others under run are refused by check_run_table.
    const bool execution_key = parts.size() == 2 && parts[0] == "run" &&
                               std::ranges::count(execution_keys(), leaf) > 0;
    if (!old && !add && parts.size() == 2 && parts[0] == "run" && !execution_key)
      throw UserError("override \"" + ov + "\": run." + leaf + " is not an execution key" + did_you_mean(leaf, execution_keys()));
    if (!old) {
      if (!add && !execution_key)
        throw UserError("override \"" + ov + "\": no key \"" + key + "\" in the config (write +" + key + "=" + text + " to add one)" +
                        did_you_mean(key, key_paths(config)));
      if (auto v = parse_value(text)) t->insert_or_assign(leaf, *v->get("v"));
      else t->insert_or_assign(leaf, text);
      continue;
    }
    if (add) throw UserError("override \"" + ov + "\": key \"" + key + "\" already exists (drop the +)");
    auto bad = [&] {
      return UserError("override \"" + ov + "\": " + key + " is " + type_name(*old) + " (" + at(old->source()) +
                       "), \"" + text + "\" is not");
    };
    switch (old->type()) {
      case toml::node_type::string:
        t->insert_or_assign(leaf, text);
        break;
      case toml::node_type::integer: {
        auto v = parse_value(text);
        if (!v || !v->get("v")->is_integer()) throw bad();
        t->insert_or_assign(leaf, *v->get("v"));
        break;
      }
      case toml::node_type::floating_point: {
        auto v = parse_value(text);
        if (!v || !(v->get("v")->is_floating_point() || v->get("v")->is_integer())) throw bad();
        t->insert_or_assign(leaf, *v->get("v")->value<double>());
        break;
      }
      case toml::node_type::boolean:
        if (text != "true" && text != "false") throw bad();
        t->insert_or_assign(leaf, text == "true");
        break;
      default: {
        auto v = parse_value(text);
        if (!v || v->get("v")->type() != old->type()) throw bad();
        t->insert_or_assign(leaf, *v->get("v"));
      }
    }
  }
}

namespace {
// ${env:NAME,default} and the recipes' ${oc.env:NAME,default} are replaced; ${art:...} is left for
// the artifact references (resolve_artifact_refs); any other ${...} is an error, never a literal.
std::string interpolate_string(const std::string& s, const std::string& key, const std::string& where) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t start = s.find("${", pos);
    if (start == std::string::npos) break;
    size_t end = s.find('}', start);
    if (end == std::string::npos) throw UserError(where + ": " + key + ": unterminated ${...} in \"" + s + "\"");
    out += s.substr(pos, start - pos);
    std::string inner = s.substr(start + 2, end - start - 2);
    pos = end + 1;
    if (inner.starts_with("art:")) {
      out += "${" + inner + "}";
      continue;
    }
    const size_t prefix = inner.starts_with("env:") ? 4 : inner.starts_with("oc.env:") ? 7 : 0;
    if (prefix == 0)
      throw UserError(where + ": " + key + ": unknown interpolation ${" + inner + "} in \"" + s +
                      "\" (known: ${env:NAME,default}, ${oc.env:NAME,default}, ${art:NAME,FIELD})");
    inner.erase(0, prefix);
    size_t comma = inner.find(',');
    std::string name = inner.substr(0, comma);
    if (name.empty()) throw UserError(where + ": " + key + ": empty variable name in \"" + s + "\"");
    const char* v = std::getenv(name.c_str());
    if (v) out += v;
    else if (comma != std::string::npos) out += inner.substr(comma + 1);
    else throw UserError(where + ": " + key + ": environment variable " + name + " is not set and has no default (write ${env:" + name + ",default})");
  }
  return out + s.substr(pos);
}

void interpolate_node(toml::node& n, const std::string& key, const std::string& where) {
  if (auto* t = n.as_table()) {
    for (auto&& [k, v] : *t) interpolate_node(v, key.empty() ? std::string(k.str()) : key + "." + std::string(k.str()), where);
  } else if (auto* a = n.as_array()) {
    for (size_t i = 0; i < a->size(); ++i) interpolate_node((*a)[i], key + "[" + std::to_string(i) + "]", where);
  } else if (auto* s = n.as_string()) {
    if (s->get().find("${") != std::string::npos) {
      std::string w = n.source().path ? at(n.source()) : where;
      s->get() = interpolate_string(s->get(), key, w);
      if (size_t bad = rt::invalid_utf8_at(s->get()); bad != std::string::npos)
        throw UserError(w + ": " + key + ": the value with its environment variables is not valid UTF-8 at byte " +
                        std::to_string(bad + 1));
    }
  }
}

nlohmann::json node_to_json(const toml::node& n) {
  if (auto* t = n.as_table()) return toml_to_json(*t);
  if (auto* a = n.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : *a) j.push_back(node_to_json(e));
    return j;
  }
  if (auto v = n.value_exact<std::string>()) return *v;
  if (auto v = n.value_exact<int64_t>()) return *v;
  if (auto v = n.value_exact<double>()) return *v;
  if (auto v = n.value_exact<bool>()) return *v;
  // Dates and times: their TOML text.
  std::ostringstream ss;
  if (auto d = n.value_exact<toml::date>()) ss << *d;
  else if (auto t = n.value_exact<toml::time>()) ss << *t;
  else if (auto dt = n.value_exact<toml::date_time>()) ss << *dt;
  return ss.str();
}
}  // namespace

void interpolate_env(toml::table& config, const std::string& where) {
  for (auto&& [k, v] : config) interpolate_node(v, std::string(k.str()), where);
}

nlohmann::json toml_to_json(const toml::table& t) {
  nlohmann::json j = nlohmann::json::object();
  for (auto&& [k, v] : t) j[std::string(k.str())] = node_to_json(v);
  return j;
}

std::string to_toml_text(const toml::table& t) {
  std::ostringstream ss;
  ss << toml::toml_formatter(t, toml::format_flags::none);
  return ss.str();
}

}  // namespace nemokit
