#include "nemokit/runtime/run/metrics_log.hpp"

#include "nemokit/runtime/run/metric_scalars.hpp"

#include <stdexcept>

namespace nemokit::rt {

MetricsLog::MetricsLog(const std::filesystem::path& path) : dir_(path.parent_path()), out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(path.string() + ": cannot open for writing");
}

void MetricsLog::write(const nlohmann::json& line) {
  // Generated text may end inside a UTF-8 sequence: replace such bytes rather than lose the line.
  out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out_.flush();
  const auto scalars = metric_scalars(line);
  if (scalars.empty()) return;
  std::string phase;
  if (auto p = line.find("phase"); p != line.end() && p->is_string()) phase = p->get<std::string>();
  auto& writer = events_[phase];
  if (!writer) {
    std::filesystem::path dir = dir_.empty() ? std::filesystem::path(".") : dir_;
    if (!phase.empty()) {
      // A phase name is one folder below the job's, never a path that leaves it.
      std::string folder = phase;
      for (char& c : folder)
        if (c == '/' || c == '\\') c = '_';
      if (folder == "." || folder == "..") folder = "phase" + folder;
      dir /= folder;
      std::filesystem::create_directories(dir);
    }
    writer = std::make_unique<TfEventsWriter>(dir);
  }
  writer->write_scalars(metric_step(line), scalars, wall_time_now());
}

std::filesystem::path MetricsLog::events_path() const {
  auto it = events_.find("");
  return it == events_.end() ? std::filesystem::path() : it->second->path();
}

}  // namespace nemokit::rt
