#pragma once
// `nemokit report JOB`: one self-contained HTML page for a job folder (no scripts, no external
// files): the job's facts, an SVG line plot for each series of loss, learning rate, grad norm,
// reward and throughput it logged, a table of every scalar, where its TensorBoard logs are,
// its lineage (what it published, drawn back to the raw data as `nemokit artifacts lineage`
// draws it) and its resolved config.

#include "exec/job.hpp"

#include "nemokit/runtime/artifacts.hpp"

#include <optional>
#include <string>
#include <vector>

namespace nemokit::report {

struct JobReport {
  std::string html;
  std::vector<std::string> plotted;   // series names, one <svg> each, in page order
  std::vector<std::string> warnings;  // metrics lines skipped, a missing config
};

// `wandb_sync`: the upload command to show (empty: none); `store`: the artifact store the job
// published to (job.json's artifacts_root).
JobReport render_job_report(const JobDir& job, const std::string& wandb_sync, const rt::artifacts::Store& store);

}  // namespace nemokit::report
