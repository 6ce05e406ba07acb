#include "nemokit/runtime/run/metrics_log.hpp"

#include <stdexcept>

namespace nemokit::rt {

MetricsLog::MetricsLog(const std::filesystem::path& path) : out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(path.string() + ": cannot open for writing");
}

void MetricsLog::write(const nlohmann::json& line) {
  // Generated text may end inside a UTF-8 sequence: replace such bytes rather than lose the line.
  out_ << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out_.flush();
}

}  // namespace nemokit::rt
