#include "exec/job_shape.hpp"

#include "util/error.hpp"
#include "util/suggest.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace nemokit {

namespace {

const toml::table* run_table(const toml::table& config) {
  const toml::node* n = config.get("run");
  return n ? n->as_table() : nullptr;
}

std::optional<int64_t> config_int(const toml::table* run, const char* key) {
  if (!run) return std::nullopt;
  const toml::node* n = run->get(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) throw UserError(std::string("config key run.") + key + " must be an integer");
  return n->value<int64_t>();
}

std::optional<std::string> config_str(const toml::table* run, const char* key) {
  if (!run) return std::nullopt;
  const toml::node* n = run->get(key);
  if (!n) return std::nullopt;
  // `run.time=04:00:00` on the command line parses as a TOML time of day: take it as the limit.
  if (auto t = n->as_time()) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", t->get().hour, t->get().minute, t->get().second);
    return std::string(buf);
  }
  if (!n->is_string()) throw UserError(std::string("config key run.") + key + " must be a string");
  return n->value<std::string>();
}

std::optional<std::vector<std::string>> config_strings(const toml::table* run, const char* key) {
  if (!run) return std::nullopt;
  const toml::node* n = run->get(key);
  if (!n) return std::nullopt;
  std::vector<std::string> out;
  if (auto one = n->value<std::string>()) return std::vector<std::string>{*one};
  const toml::array* a = n->as_array();
  if (!a) throw UserError(std::string("config key run.") + key + " must be a string or an array of strings");
  for (const auto& item : *a) {
    auto v = item.value<std::string>();
    if (!v) throw UserError(std::string("config key run.") + key + " must be an array of strings");
    out.push_back(*v);
  }
  return out;
}

std::optional<bool> config_bool(const toml::table* run, const char* key) {
  if (!run) return std::nullopt;
  const toml::node* n = run->get(key);
  if (!n) return std::nullopt;
  if (!n->is_boolean()) throw UserError(std::string("config key run.") + key + " must be true or false");
  return n->value<bool>();
}

// Picks the strongest source for one key: override, profile, config.
template <class T, class ProfileGet, class ConfigGet>
std::optional<T> pick(const char* key, const std::set<std::string>& overridden, ProfileGet from_profile, ConfigGet from_config) {
  if (overridden.count(key))
    if (auto v = from_config(key)) return v;
  if (auto v = from_profile(key)) return v;
  return from_config(key);
}

int checked(std::optional<int64_t> v, const char* key, int fallback, int minimum) {
  if (!v) return fallback;
  if (*v < minimum || *v > 1000000)
    throw UserError(std::string("run key ") + key + " = " + std::to_string(*v) + ": must be at least " + std::to_string(minimum));
  return static_cast<int>(*v);
}

}  // namespace

const std::vector<std::string>& execution_keys() {
  static const std::vector<std::string> keys = {
      "nodes", "ntasks_per_node", "nproc_per_node", "gpus_per_node", "gpu_memory", "cpus_per_task", "time", "mem",
      "mpi", "account", "partition", "exclusive", "job_name", "signal_seconds", "container_image", "mounts"};
  return keys;
}

void check_run_table(const toml::table& config) {
  const toml::table* run = run_table(config);
  if (!run) return;
  const auto& known = execution_keys();
  for (const auto& [key, value] : *run) {
    const std::string k(key.str());
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    std::string known_list;
    for (const auto& n : known) known_list += (known_list.empty() ? "" : ", ") + n;
    throw UserError("config key run." + k + ": not an execution key (they are: " + known_list + ")" + did_you_mean(k, known));
  }
}

std::set<std::string> overridden_run_keys(const std::vector<std::string>& overrides) {
  std::set<std::string> keys;
  for (std::string o : overrides) {
    if (!o.empty() && o[0] == '+') o.erase(0, 1);
    if (!o.starts_with("run.")) continue;
    auto eq = o.find('=');
    keys.insert(o.substr(4, eq == std::string::npos ? std::string::npos : eq - 4));
  }
  return keys;
}

int local_rank_count(const Profile* profile, const toml::table& config, const std::set<std::string>& overridden,
                     int visible_gpus) {
  const toml::table* run = run_table(config);
  auto p_int = [&](const char* k) { return profile ? profile->integer(k) : std::nullopt; };
  auto c_int = [&](const char* k) { return config_int(run, k); };
  for (const char* key : {"nproc_per_node", "ntasks_per_node"})
    if (auto n = pick<int64_t>(key, overridden, p_int, c_int)) return checked(n, key, 1, 1);
  std::optional<int64_t> gpus;
  if (overridden.count("gpus_per_node")) gpus = c_int("gpus_per_node");
  if (!gpus) gpus = p_int("gpus_per_node");
  if (gpus) return std::max(1, checked(gpus, "gpus_per_node", 0, 0));
  int recipe_gpus = checked(c_int("gpus_per_node"), "gpus_per_node", 0, 0);
  return std::max(1, std::min(recipe_gpus, visible_gpus));
}

JobShape resolve_job_shape(const Profile* profile, const toml::table& config, const std::set<std::string>& overridden,
                           bool detached, const std::string& default_job_name) {
  check_run_table(config);
  const toml::table* run = run_table(config);
  auto p_int = [&](const char* k) { return profile ? profile->integer(k) : std::nullopt; };
  auto p_str = [&](const char* k) { return profile ? profile->str(k) : std::nullopt; };
  auto p_strings = [&](const char* k) {
    return profile && !profile->strings(k).empty() ? std::optional(profile->strings(k)) : std::nullopt;
  };
  auto c_strings = [&](const char* k) { return config_strings(run, k); };
  auto p_bool = [&](const char* k) { return profile ? profile->boolean(k) : std::nullopt; };
  auto c_int = [&](const char* k) { return config_int(run, k); };
  auto c_str = [&](const char* k) { return config_str(run, k); };
  auto c_bool = [&](const char* k) { return config_bool(run, k); };
  auto none_str = [](const char*) { return std::optional<std::string>{}; };

  JobShape s;
  s.nodes = checked(pick<int64_t>("nodes", overridden, p_int, c_int), "nodes", 1, 1);
  s.gpus_per_node = checked(pick<int64_t>("gpus_per_node", overridden, p_int, c_int), "gpus_per_node", 0, 0);
  auto tasks = pick<int64_t>("ntasks_per_node", overridden, p_int, c_int);
  if (!tasks) tasks = pick<int64_t>("nproc_per_node", overridden, p_int, c_int);
  s.tasks_per_node = checked(tasks, "ntasks_per_node", s.gpus_per_node > 0 ? s.gpus_per_node : 1, 1);
  s.cpus_per_task = checked(pick<int64_t>("cpus_per_task", overridden, p_int, c_int), "cpus_per_task", 0, 1);
  s.signal_seconds = checked(c_int("signal_seconds"), "signal_seconds", 120, 1);
  s.exclusive = pick<bool>("exclusive", overridden, p_bool, c_bool).value_or(false);
  s.time = pick<std::string>("time", overridden, p_str, c_str).value_or("");
  s.mem = pick<std::string>("mem", overridden, p_str, c_str).value_or("");
  s.gpu_memory = pick<std::string>("gpu_memory", overridden, p_str, c_str).value_or("");
  s.mpi = pick<std::string>("mpi", overridden, p_str, c_str).value_or("");
  if (s.mpi.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
    throw UserError("run key mpi = \"" + s.mpi + "\": not one of srun's --mpi plugins (pmix, pmix_v4, pmi2, none, ...)");
  s.account = pick<std::string>("account", overridden, p_str, c_str).value_or("");
  std::optional<std::string> part;
  if (overridden.count("partition")) part = c_str("partition");
  if (!part) part = p_str(detached ? "batch_partition" : "run_partition");
  if (!part) part = pick<std::string>("partition", overridden, p_str, c_str);
  s.partition = part.value_or("");
  s.job_name = pick<std::string>("job_name", overridden, none_str, c_str).value_or(default_job_name);
  s.container_image = pick<std::string>("container_image", overridden, p_str, c_str).value_or("");
  s.mounts = pick<std::vector<std::string>>("mounts", overridden, p_strings, c_strings).value_or(std::vector<std::string>{});
  return s;
}

}  // namespace nemokit
