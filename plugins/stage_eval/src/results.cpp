#include "results.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace nemokit::eval {
using nlohmann::json;

json ModelResult::to_json() const {
  json metrics = json::object();
  for (const Row& r : rows) metrics[r.key] = {{"value", r.value}, {"count", r.count}, {"unit", r.unit}};
  return {{"label", label}, {"path", dir.string()}, {"origin", origin}, {"seconds", seconds}, {"metrics", metrics}};
}

std::string model_label(const std::filesystem::path& dir) {
  const std::filesystem::path p = dir.lexically_normal();
  const std::string leaf = p.has_filename() ? p.filename().string() : p.parent_path().filename().string();
  const std::filesystem::path parent = p.has_filename() ? p.parent_path() : p.parent_path().parent_path();
  return parent.filename().empty() ? leaf : parent.filename().string() + "/" + leaf;
}

std::string side_by_side(const std::vector<ModelResult>& models) {
  std::vector<const Row*> order;  // the first model's row of each key, in first-seen order
  for (const ModelResult& m : models)
    for (const Row& r : m.rows)
      if (std::none_of(order.begin(), order.end(), [&](const Row* o) { return o->key == r.key; })) order.push_back(&r);
  auto label_of = [](const Row& r) { return r.label + " (" + std::to_string(r.count) + " " + r.unit + ")"; };
  size_t first = 0;
  for (const Row* r : order) first = std::max(first, label_of(*r).size());
  std::vector<size_t> widths;
  for (const ModelResult& m : models) widths.push_back(std::max<size_t>(m.label.size(), 8));
  std::string out = std::string(first, ' ');
  for (size_t i = 0; i < models.size(); ++i) out += "  " + std::string(widths[i] - models[i].label.size(), ' ') + models[i].label;
  out += "\n";
  for (const Row* r : order) {
    std::string line = label_of(*r);
    line += std::string(first - line.size(), ' ');
    for (size_t i = 0; i < models.size(); ++i) {
      std::string cell = "-";
      for (const Row& mine : models[i].rows)
        if (mine.key == r->key) {
          char buf[48];
          std::snprintf(buf, sizeof buf, "%.*f", mine.precision, mine.value);
          cell = buf;
        }
      line += "  " + std::string(widths[i] - std::min(widths[i], cell.size()), ' ') + cell;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace nemokit::eval
