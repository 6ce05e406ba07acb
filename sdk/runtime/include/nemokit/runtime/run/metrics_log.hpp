#pragma once
// metrics.jsonl of a training job: one JSON object a line, appended and flushed at once so a
// killed run keeps every line it reported and a resumed run continues the same file. Beside it,
// a TensorBoard event file (tfevents.hpp) gets every number of every line (metric_scalars.hpp),
// so each stage's curves open in TensorBoard without the stage doing anything more. Lines of a
// named phase ("phase": "reward_model") go to an event file in a subfolder of that name: their
// steps start again from 0, and TensorBoard drops the events of a run past a step that goes back.

#include "nemokit/runtime/run/tfevents.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace nemokit::rt {

class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& path);
  void write(const nlohmann::json& line);

  // The event file of lines without a phase, once the first one with a number has made it;
  // empty before.
  std::filesystem::path events_path() const;

 private:
  std::filesystem::path dir_;
  std::ofstream out_;
  // By phase ("" for none), each made on first use: a run with nothing to log leaves no empty file.
  std::map<std::string, std::unique_ptr<TfEventsWriter>> events_;
};

}  // namespace nemokit::rt
