#pragma once
// The layer cache of the builder's steps: a RUN, COPY or ADD is keyed by the
// chain of steps before it and what it does; its record
// (<build_cache_dir>/build/cache/<key>.json) names the layer it made, or none
// when it changed nothing. Private to the builder (src/dockerfile).
#include <filesystem>
#include <optional>
#include <string>

#include "nemokit/dockerfile/layer_store.hpp"

namespace nemokit::dockerfile {

// Now, as image history and config write it.
std::string now_rfc3339();

// A temporary folder for one step (upper, work, mount point, source mount),
// removed however the step ends.
struct StepDirs {
  std::filesystem::path base, upper, work, mnt, src;
  explicit StepDirs(LayerStore& store);
  ~StepDirs();
  StepDirs(const StepDirs&) = delete;
  StepDirs& operator=(const StepDirs&) = delete;
};

struct CachedStep {
  std::optional<LayerRef> layer;  // nullopt: the step changed no file
  std::string created;            // when the step first ran
};

class StepCache {
 public:
  explicit StepCache(LayerStore& store) : store_(store) {}

  // The key of a step whose parent has key `parent_chain`.
  static std::string key(const std::string& parent_chain, const std::string& step_text);

  // The step's earlier result, when its record is readable and its layer is
  // still in the store; a damaged record counts as no record.
  std::optional<CachedStep> find(const std::string& key) const;

  // Records a step's result (atomically: a record is whole or absent).
  void remember(const std::string& key, const CachedStep& step) const;

 private:
  std::filesystem::path record_path(const std::string& key) const;
  LayerStore& store_;
};

}  // namespace nemokit::dockerfile
