#pragma once

#include "exec/sbatch_script.hpp"
#include "profiles/profiles.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nemokit {

// What a Slurm job of a profile runs: the stage image (or none) and each task's nemokit words.
struct SlurmJobRequest {
  const Profile* profile = nullptr;
  JobShape shape;
  std::filesystem::path job_dir;   // absolute
  std::string title;
  std::string image;               // the stage's image name ("" when the job needs none)
  std::vector<std::string> task_args;  // nemokit's arguments in each task, e.g. {"__task", JOB}
};

struct SlurmJobPlan {
  SlurmScript script;
  std::map<std::string, std::string> secrets;  // for <job>/secrets.env (0600)
};

// Turns a profile into the script's parts: container = "pyxis" (the default) runs tasks in
// the shape's container_image (command line, profile or config [run]), else
// ${build_cache_dir}/containers/<image>.sqsh made absolute, with the shape's mounts plus the job root, the job folder as workdir and `nemokit` from the image;
// container = "none" runs this nemokit binary on the nodes. env_vars whose names hold KEY,
// TOKEN, SECRET, PASSWORD, PASSWD or CREDENTIAL go to `secrets`, never into the script.
// Throws UserError naming the profile key for a value it cannot use.
SlurmJobPlan plan_slurm_job(const SlurmJobRequest& req);

// build_cache_dir: the profile's, by the one rule of rt::build_cache_dir (run/paths.hpp).
std::filesystem::path build_cache_dir_for(const Profile* profile);

}  // namespace nemokit
