#include "stage.hpp"

#include <cctype>

namespace nemokit::dockerfile {
using nlohmann::json;

void fail_at(const Location& where, const std::string& message) { throw BuildError(where.str() + ": " + message); }

std::string lower_case(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json& config_of(Stage& s) { return s.image["config"]; }

std::vector<std::string> env_list(Stage& s) {
  std::vector<std::string> out;
  if (config_of(s).contains("Env") && config_of(s)["Env"].is_array())
    for (auto& e : config_of(s)["Env"]) out.push_back(e.get<std::string>());
  return out;
}

void set_env(Stage& s, const std::string& key, const std::string& value) {
  auto env = env_list(s);
  bool done = false;
  for (auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      done = true;
    }
  if (!done) env.push_back(key + "=" + value);
  config_of(s)["Env"] = env;
}

Vars vars_of(Stage& s) {
  Vars v = s.args;
  for (auto& e : env_list(s)) {
    size_t eq = e.find('=');
    if (eq != std::string::npos) v[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return v;
}

std::string workdir_of(Stage& s) {
  std::string wd = config_of(s).value("WorkingDir", "");
  return wd.empty() ? "/" : wd;
}

std::vector<std::string> shell_command(const Stage& s, const std::string& text) {
  std::vector<std::string> v = s.shell;
  v.push_back(text);
  return v;
}

void add_history(Stage& s, const std::string& created_by, bool empty_layer, std::string created) {
  if (!s.image.contains("history") || !s.image["history"].is_array()) s.image["history"] = json::array();
  if (created.empty()) {
    auto& h = s.image["history"];
    created = !h.empty() && h.back().contains("created") && h.back()["created"].is_string()
                  ? h.back()["created"].get<std::string>()
                  : "1970-01-01T00:00:00Z";
  }
  json h = {{"created", created}, {"created_by", created_by}};
  if (empty_layer) h["empty_layer"] = true;
  s.image["history"].push_back(h);
}

}  // namespace nemokit::dockerfile
