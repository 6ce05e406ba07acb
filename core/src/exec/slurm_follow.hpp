#pragma once

#include "exec/job.hpp"

#include <string>

namespace nemokit {

// Follows a submitted Slurm job until it ends: streams <job>/logs/slurm-ID.out to stdout and
// .err to stderr as they grow, records each state change in job.json and returns the job's exit
// code (the batch script's; 128+N for signal N). A requeued job is followed through its restart.
// SIGINT, SIGTERM or SIGHUP cancel the job (scancel) and the follow returns 130 once Slurm has
// ended it; a second one stops following at once.
int follow_slurm_job(JobDir& job, const std::string& slurm_id);

}  // namespace nemokit
