#pragma once
// The lineage of an artifact: what it was made from (tracking.used_artifacts), walked back
// through the store down to the raw files its data came from (source_datasets), as a list of
// nodes in depth-first order; drawn as a text tree (`nemokit artifacts lineage`) or as SVG boxes
// joined by elbow lines (`--svg`, and the lineage section of `nemokit report`).

#include "nemokit/runtime/artifacts.hpp"

#include <string>
#include <vector>

namespace nemokit {

struct LineageNode {
  int depth = 0;
  std::string title;   // "name:vN  Type", or "raw PATH"
  std::string detail;  // digest and summary, or the raw file's digest
  bool raw = false;
};

// Depth first from `ref` (NAME, NAME:latest or NAME:vN); a used artifact the store no longer
// has is a node that says so. Throws rt::artifacts::NotFound when `ref` itself is missing.
std::vector<LineageNode> lineage_of(const rt::artifacts::Store& store, const std::string& ref);

// One line per node, "├─ " / "└─ " / "│  " before it by depth.
std::string lineage_tree_text(const std::vector<LineageNode>& nodes);

// A standalone <svg> element.
std::string lineage_svg(const std::vector<LineageNode>& nodes);

}  // namespace nemokit
