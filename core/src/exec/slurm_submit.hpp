#pragma once

#include "exec/job.hpp"
#include "exec/slurm_plan.hpp"

#include <string>
#include <vector>

namespace nemokit {

// Writes <job>/sbatch.sh (and <job>/secrets.env, 0600, when there are secrets), submits it with
// `sbatch --parsable` (--dependency=afterok:AFTER when given) and records slurm_job_id, executor
// and state SUBMITTED in job.json. Returns the Slurm id. A script that cannot be rendered or a
// refused submission leaves the job NOT_SUBMITTED and throws.
std::string submit_slurm_job(JobDir& job, const SlurmJobPlan& plan, const std::string& after = "");

// Writes <job>/sbatch.sh (0755) and, with secrets, <job>/secrets.env (0600), atomically; submits
// nothing (`nemokit run --stage`).
void write_slurm_job_files(const JobDir& job, const SlurmJobPlan& plan);

// What `nemokit build IMAGE --run PROFILE` submits: one task on the profile's build_partition
// (else partition), build_time as the limit (else time), no container (the builder needs the
// node's namespaces), running this nemokit with `nemokit_args` (e.g. {"build", IMAGE}).
SlurmJobPlan plan_build_job(const Profile& profile, const std::filesystem::path& job_dir, const std::string& image,
                            const std::vector<std::string>& nemokit_args);

}  // namespace nemokit
