#include "artifacts/lineage.hpp"

#include "report/svg_plot.hpp"

#include <algorithm>
#include <iomanip>
#include <optional>
#include <set>
#include <sstream>

namespace nemokit {
namespace art = rt::artifacts;
using nlohmann::json;

namespace {

// The type's headline numbers, for one line.
std::string summary(const json& m) {
  std::vector<std::string> parts;
  auto num = [&](const char* key, const char* label) {
    if (m.contains(key) && m[key].is_number()) {
      std::ostringstream s;
      if (m[key].is_number_float()) s << std::setprecision(4) << m[key].get<double>();
      else s << m[key].dump();
      parts.push_back(std::string(label) + " " + s.str());
    }
  };
  num("step", "step");
  num("final_loss", "final_loss");
  num("total_tokens", "tokens");
  num("shards", "shards");
  num("pack_size", "pack_size");
  if (m.contains("splits") && m["splits"].is_object())
    for (const auto& [k, v] : m["splits"].items())
      if (v.is_object() && v.contains("records")) parts.push_back(k + " " + v["records"].dump());
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

void walk(const art::Store& store, const std::string& ref, int depth, std::set<std::string>& on_path,
          std::vector<LineageNode>& out) {
  std::optional<art::Artifact> a;
  try {
    a = store.resolve(ref);
  } catch (const std::exception& e) {
    out.push_back({depth, ref, "missing from the store", false});
    return;
  }
  std::string s = summary(a->metadata);
  out.push_back({depth, a->ref() + "  " + a->type(), a->digest() + (s.empty() ? "" : "  " + s), false});
  if (!on_path.insert(a->ref()).second) {
    out.back().detail += "  (cycle)";
    return;
  }
  for (const auto& u : a->used()) walk(store, u, depth + 1, on_path, out);
  // The raw files a data artifact was made from.
  if (a->metadata.contains("source_datasets") && a->metadata["source_datasets"].is_array())
    for (const auto& src : a->metadata["source_datasets"])
      if (src.is_object() && src.contains("path"))
        out.push_back({depth + 1, "raw " + src["path"].get<std::string>(),
                       src.contains("sha256") ? "sha256:" + src["sha256"].get<std::string>() : "", true});
  on_path.erase(a->ref());
}

}  // namespace

std::vector<LineageNode> lineage_of(const art::Store& store, const std::string& ref) {
  store.resolve(ref);  // NotFound names the reference and what the store holds
  std::vector<LineageNode> nodes;
  std::set<std::string> on_path;
  walk(store, ref, 0, on_path, nodes);
  return nodes;
}

std::string lineage_tree_text(const std::vector<LineageNode>& nodes) {
  std::string out;
  // For each node, whether a later sibling follows at each depth above it.
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string prefix;
    for (int d = 1; d <= nodes[i].depth; ++d) {
      bool more = false;  // another node at depth d before the next shallower one
      for (size_t k = i + 1; k < nodes.size() && nodes[k].depth >= d; ++k)
        if (nodes[k].depth == d) {
          more = true;
          break;
        }
      if (d == nodes[i].depth) prefix += more ? "├─ " : "└─ ";
      else prefix += more ? "│  " : "   ";
    }
    out += prefix + nodes[i].title + "  " + nodes[i].detail + "\n";
  }
  return out;
}

// One box per node, a row each, indented by depth, joined to its parent by an elbow line.
std::string lineage_svg(const std::vector<LineageNode>& nodes) {
  const int row = 54, indent = 36, margin = 16, box_h = 42, char_w = 7;
  size_t widest = 0;
  for (const auto& n : nodes) widest = std::max(widest, size_t(n.depth * indent) + std::max(n.title.size(), n.detail.size()) * char_w);
  const int width = int(widest) + 2 * margin + 24, height = int(nodes.size()) * row + 2 * margin;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height << "\" viewBox=\"0 0 " << width
    << " " << height << "\" font-family=\"monospace\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::vector<int> parent_at_depth;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const LineageNode& n = nodes[i];
    const int x = margin + n.depth * indent, y = margin + int(i) * row;
    const int w = int(std::max(n.title.size(), n.detail.size())) * char_w + 16;
    if (n.depth > 0 && int(parent_at_depth.size()) >= n.depth) {
      const int p = parent_at_depth[size_t(n.depth - 1)];
      const int px = margin + (n.depth - 1) * indent + 12, py = margin + p * row + box_h;
      s << "<path d=\"M" << px << " " << py << " V" << (y + box_h / 2) << " H" << x << "\" fill=\"none\" stroke=\"#555\"/>\n";
    }
    parent_at_depth.resize(size_t(n.depth) + 1);
    parent_at_depth[size_t(n.depth)] = int(i);
    s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << box_h << "\" rx=\"5\" fill=\""
      << (n.raw ? "#f3f3f3" : n.depth == 0 ? "#dbeafe" : "#e8f5e9") << "\" stroke=\"#333\"/>\n"
      << "<text x=\"" << x + 8 << "\" y=\"" << y + 17 << "\" font-weight=\"bold\">" << report::xml_escape(n.title) << "</text>\n"
      << "<text x=\"" << x + 8 << "\" y=\"" << y + 34 << "\" fill=\"#444\">" << report::xml_escape(n.detail) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace nemokit
