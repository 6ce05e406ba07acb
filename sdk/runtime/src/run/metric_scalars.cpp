#include "nemokit/runtime/run/metric_scalars.hpp"

namespace nemokit::rt {

namespace {
void collect(const nlohmann::json& obj, const std::string& prefix, bool top, std::vector<std::pair<std::string, double>>& out) {
  for (const auto& [key, value] : obj.items()) {
    if (top && (key == "step" || key == "phase")) continue;
    if (value.is_number()) out.emplace_back(prefix + key, value.get<double>());
    else if (value.is_object()) collect(value, prefix + key + "/", false, out);
  }
}
}  // namespace

std::vector<std::pair<std::string, double>> metric_scalars(const nlohmann::json& line) {
  std::vector<std::pair<std::string, double>> out;
  if (!line.is_object()) return out;
  std::string prefix;
  if (auto p = line.find("phase"); p != line.end() && p->is_string() && !p->get<std::string>().empty())
    prefix = p->get<std::string>() + "/";
  collect(line, prefix, true, out);
  return out;
}

int64_t metric_step(const nlohmann::json& line) {
  if (auto s = line.find("step"); line.is_object() && s != line.end() && s->is_number()) return s->get<int64_t>();
  return 0;
}

}  // namespace nemokit::rt
