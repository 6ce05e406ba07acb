#pragma once
// The curves of a job: metrics.jsonl read back into one (step, value) series per scalar, named as
// the event files name them (nemokit/runtime/run/metric_scalars.hpp).

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::report {

struct MetricSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (step, value), in the order the run logged them
};

struct MetricsFile {
  std::vector<MetricSeries> series;  // in the order each first appeared
  size_t lines = 0;
  std::vector<std::string> skipped;  // "FILE:LINE: why", for lines that are not JSON objects
};

// Reads `path`; a missing file gives no series. A line that does not parse (a run killed in the
// middle of writing one) is skipped and named in `skipped`, never fatal.
MetricsFile read_metrics(const std::filesystem::path& path);

// The plots a report draws, in its order: loss, learning rate, grad norm, reward, throughput.
// Each series falls in the first group it matches ("reward_model/loss" is a loss).
struct PlotGroup {
  std::string title;
  std::vector<const MetricSeries*> series;
};
std::vector<PlotGroup> plot_groups(const MetricsFile& metrics);

}  // namespace nemokit::report
