#include "exec/slurm_submit.hpp"
#include "exec/slurm_plan.hpp"

#include "exec/process.hpp"
#include "exec/slurm_client.hpp"

#include "nemokit/runtime/atomic_file.hpp"

namespace nemokit {

void write_slurm_job_files(const JobDir& job, const SlurmJobPlan& plan) {
  std::string script_text = render_sbatch_script(plan.script);
  if (!plan.secrets.empty()) rt::write_file_atomic(job.path / "secrets.env", render_secrets_file(plan.secrets), 0600);
  rt::write_file_atomic(job.path / "sbatch.sh", script_text, 0755);
}

std::string submit_slurm_job(JobDir& job, const SlurmJobPlan& plan, const std::string& after) {
  std::string id;
  try {
    write_slurm_job_files(job, plan);
    std::vector<std::string> extra;
    if (!after.empty()) extra.push_back("--dependency=afterok:" + after);
    id = sbatch_submit(job.path / "sbatch.sh", extra);
  } catch (...) {
    job.set_state("NOT_SUBMITTED", -1);
    throw;
  }
  job.meta["executor"] = "slurm";
  job.meta["slurm_job_id"] = id;
  job.meta["world_size"] = plan.script.shape.world_size();
  if (!after.empty()) job.meta["after"] = after;
  job.set_state("SUBMITTED", -1);
  return id;
}

SlurmJobPlan plan_build_job(const Profile& profile, const std::filesystem::path& job_dir, const std::string& image,
                            const std::vector<std::string>& nemokit_args) {
  SlurmJobRequest req;
  req.profile = &profile;
  req.shape.job_name = "nemokit-build-" + image;
  req.shape.partition = profile.str("build_partition").value_or(profile.str("partition").value_or(""));
  req.shape.time = profile.str("build_time").value_or(profile.str("time").value_or(""));
  req.shape.account = profile.str("account").value_or("");
  if (auto c = profile.integer("cpus_per_task")) req.shape.cpus_per_task = static_cast<int>(*c);
  req.job_dir = job_dir;
  req.title = "nemokit build " + image + " (profile " + profile.name + ")";
  req.task_args = nemokit_args;
  SlurmJobPlan plan = plan_slurm_job(req);
  if (plan.script.use_container) {  // the profile's container_image is for stages, not for builds
    plan.script.use_container = false;
    plan.script.task_argv.front() = self_executable().string();
  }
  // The node's nemokit has no profile: the profile's cache folder reaches it through the
  // environment, so the image lands where the profile's stages will look for it.
  plan.script.env["NEMOKIT_BUILD_CACHE_DIR"] = build_cache_dir_for(&profile).string();
  return plan;
}

}  // namespace nemokit
