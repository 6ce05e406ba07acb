#include "report/metric_series.hpp"

#include "nemokit/runtime/run/metric_scalars.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>

namespace nemokit::report {

MetricsFile read_metrics(const std::filesystem::path& path) {
  MetricsFile out;
  std::ifstream in(path);
  std::map<std::string, size_t> index;
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      out.skipped.push_back(path.string() + ":" + std::to_string(n) + ": not a JSON object");
      continue;
    }
    ++out.lines;
    const double step = double(rt::metric_step(j));
    for (const auto& [name, value] : rt::metric_scalars(j)) {
      auto [it, fresh] = index.emplace(name, out.series.size());
      if (fresh) out.series.push_back({name, {}});
      out.series[it->second].points.emplace_back(step, value);
    }
  }
  return out;
}

std::vector<PlotGroup> plot_groups(const MetricsFile& metrics) {
  auto leaf = [](const std::string& name) { return name.substr(name.rfind('/') + 1); };
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> rules = {
      {"Loss", [&](const std::string& n) { return leaf(n) == "loss" || leaf(n) == "val_loss"; }},
      {"Learning rate", [&](const std::string& n) { return leaf(n) == "lr"; }},
      {"Grad norm", [&](const std::string& n) { return leaf(n) == "grad_norm"; }},
      {"Reward", [&](const std::string& n) { return n.find("reward") != std::string::npos; }},
      {"Throughput", [&](const std::string& n) { return leaf(n).ends_with("_per_s"); }},
  };
  std::vector<PlotGroup> groups;
  for (const auto& [title, _] : rules) groups.push_back({title, {}});
  for (const auto& s : metrics.series)
    for (size_t g = 0; g < rules.size(); ++g)
      if (rules[g].second(s.name)) {
        groups[g].series.push_back(&s);
        break;
      }
  std::erase_if(groups, [](const PlotGroup& g) { return g.series.empty(); });
  return groups;
}

}  // namespace nemokit::report
