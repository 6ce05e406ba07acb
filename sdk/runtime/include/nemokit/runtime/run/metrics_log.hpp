#pragma once
// metrics.jsonl of a training job: one JSON object a line, appended and flushed at once so a
// killed run keeps every line it reported and a resumed run continues the same file.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace nemokit::rt {

class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& path);
  void write(const nlohmann::json& line);

 private:
  std::ofstream out_;
};

}  // namespace nemokit::rt
