// EnvironmentSet: the built-ins, then the environment plugins, with the config's settings;
// scoring a task through the environments it names (README.md: "Combining environments").
#include "env/builtins.hpp"
#include "env/environment.hpp"
#include "env/plugin_environments.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace nemokit::rl {
using nlohmann::json;

namespace {

std::string weight_text(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", w);
  return buf;
}

std::vector<std::pair<std::string, double>> weight_table(const json& config, const char* key) {
  std::vector<std::pair<std::string, double>> out;
  if (!config.contains(key)) return out;
  if (!config[key].is_object()) throw std::invalid_argument(std::string("environments.") + key + " must be a table {name = weight}");
  for (const auto& [name, w] : config[key].items()) {
    if (!w.is_number() || !std::isfinite(w.get<double>()))
      throw std::invalid_argument(std::string("environments.") + key + "." + name + " must be a number");
    out.emplace_back(name, w.get<double>());
  }
  return out;
}

}  // namespace

EnvironmentSet EnvironmentSet::load(const json& config_in) {
  const json config = config_in.is_null() ? json::object() : config_in;
  if (!config.is_object()) throw std::invalid_argument("environments must be a table");
  auto settings_of = [&](const std::string& name) -> json {
    if (!config.contains(name)) return json::object();
    if (!config[name].is_object()) throw std::invalid_argument("environments." + name + " must be a table of settings");
    return config[name];
  };
  EnvironmentSet set;
  set.add(make_arithmetic(settings_of("arithmetic")), "built-in");
  set.add(make_unscramble(settings_of("unscramble")), "built-in");
  set.add(make_multiple_choice(settings_of("multiple_choice")), "built-in");
  set.add(make_answer_format(settings_of("answer_format")), "built-in");
  set.add(make_code_execution(settings_of("code_execution")), "built-in");
  set.add(make_exact_match(settings_of("exact_match")), "built-in");
  for (const auto& path : environment_plugin_files(config.value("plugins", json()))) {
    EnvironmentPluginFile f = inspect_environment_plugin(path);
    // Clashes are found from the manifests, before any plugin code runs.
    for (const auto& name : f.environments)
      for (size_t i = 0; i < set.envs_.size(); ++i)
        if (set.envs_[i]->name() == name)
          throw std::invalid_argument("environment \"" + name + "\" is served by both " + set.sources_[i] + " and " +
                                      path.string() + "; remove one");
    for (auto& env : load_environment_plugin(f, settings_of)) set.add(std::move(env), path.string());
  }
  set.weights_ = weight_table(config, "weights");
  set.always_ = weight_table(config, "always");
  for (const auto& [key, value] : config.items()) {
    if (key == "plugins" || key == "weights" || key == "always") continue;
    set.get(key);  // a settings table for an environment nobody serves is a mistake
  }
  for (const auto* table : {&set.weights_, &set.always_})
    for (const auto& [name, w] : *table) set.get(name);
  return set;
}

void EnvironmentSet::add(std::unique_ptr<Environment> env, const std::string& source) {
  for (size_t i = 0; i < envs_.size(); ++i)
    if (envs_[i]->name() == env->name())
      throw std::invalid_argument("environment \"" + env->name() + "\" is served by both " + sources_[i] + " and " + source);
  envs_.push_back(std::move(env));
  sources_.push_back(source);
}

Environment& EnvironmentSet::get(const std::string& name) {
  for (auto& e : envs_)
    if (e->name() == name) return *e;
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("no environment \"" + name + "\" (known: " + known + ")");
}

std::vector<std::string> EnvironmentSet::names() const {
  std::vector<std::string> out;
  for (const auto& e : envs_) out.push_back(e->name());
  return out;
}

namespace {
// The task's environments with their weights (task weights, else the config's, else 1).
std::vector<std::pair<std::string, double>> task_parts(const json& task, const std::vector<std::pair<std::string, double>>& weights) {
  auto config_weight = [&](const std::string& name) {
    for (const auto& [n, w] : weights)
      if (n == name) return w;
    return 1.0;
  };
  if (!task.is_object() || !task.contains("environment"))
    throw std::invalid_argument("task: \"environment\" is missing (a name, a list of names or {name: weight})");
  const json& e = task["environment"];
  std::vector<std::pair<std::string, double>> parts;
  if (e.is_string()) {
    parts.emplace_back(e.get<std::string>(), config_weight(e.get<std::string>()));
  } else if (e.is_array()) {
    for (const auto& n : e) {
      if (!n.is_string()) throw std::invalid_argument("task: \"environment\" list must hold names");
      parts.emplace_back(n.get<std::string>(), config_weight(n.get<std::string>()));
    }
  } else if (e.is_object()) {
    for (const auto& [n, w] : e.items()) {
      if (!w.is_number()) throw std::invalid_argument("task: \"environment\"." + n + " must be a weight");
      parts.emplace_back(n, w.get<double>());
    }
  } else {
    throw std::invalid_argument("task: \"environment\" must be a name, a list of names or {name: weight}");
  }
  if (parts.empty()) throw std::invalid_argument("task: \"environment\" names no environment");
  return parts;
}
}  // namespace

Reward EnvironmentSet::score(const json& task, const std::string& response) {
  auto parts = task_parts(task, weights_);
  for (const auto& [name, w] : always_) {
    bool present = false;
    for (const auto& p : parts) present |= p.first == name;
    if (!present) parts.emplace_back(name, w);
  }
  for (const auto& p : parts) get(p.first);  // unknown names fail before any scoring
  if (parts.size() == 1 && parts[0].second == 1.0) return get(parts[0].first).score(task, response);
  Reward total;
  for (const auto& [name, w] : parts) {
    Reward r = get(name).score(task, response);
    total.value += w * r.value;
    total.reason += (total.reason.empty() ? "" : "; ") + name + (w == 1.0 ? "" : " x" + weight_text(w)) + ": " + r.reason;
  }
  return total;
}

std::unique_ptr<Environment::Tools> EnvironmentSet::tools(const json& task) {
  for (const auto& [name, w] : task_parts(task, weights_))
    if (auto t = get(name).tools(task)) return t;
  return nullptr;
}

}  // namespace nemokit::rl
