#include "exec/slurm_plan.hpp"

#include "exec/process.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/run/paths.hpp"

#include <cstdlib>

namespace nemokit {
namespace fs = std::filesystem;

fs::path build_cache_dir_for(const Profile* profile) {
  const auto configured = profile ? profile->str("build_cache_dir") : std::nullopt;
  return rt::build_cache_dir(configured.value_or(""));
}

namespace {

// pyxis reads an image as a file only when it starts with / or .; anything else is a registry
// reference. A relative path the user meant as a file is made absolute.
std::string image_argument(const std::string& image) {
  bool looks_like_file = image.ends_with(".sqsh") || image.ends_with(".squashfs");
  if (looks_like_file && !image.starts_with("/")) return fs::absolute(image).lexically_normal().string();
  return image;
}

}  // namespace

SlurmJobPlan plan_slurm_job(const SlurmJobRequest& req) {
  const Profile* prof = req.profile;
  SlurmJobPlan plan;
  SlurmScript& s = plan.script;
  s.shape = req.shape;
  s.job_dir = req.job_dir;
  s.title = req.title;
  std::string where = prof ? prof->file.string() + " [" + prof->name + "]" : "profile";
  if (prof) {
    s.setup_lines = prof->strings("setup_lines");
    for (const auto& [k, v] : prof->env_vars()) {
      if (is_secret_name(k)) {
        plan.secrets[k] = v;
        s.secret_names.push_back(k);
      } else {
        s.env[k] = v;
      }
    }
  }
  std::string container = prof ? prof->str("container").value_or("pyxis") : "pyxis";
  if (container != "pyxis" && container != "none")
    throw UserError(where + ": key \"container\" must be \"pyxis\" or \"none\" (got \"" + container + "\")");
  // container_image and mounts as the job shape resolved them (the command line's, else the
  // profile's, else the stage config's [run] table); a shape made by hand falls back to the profile.
  std::string named_image = req.shape.container_image;
  if (named_image.empty() && prof) named_image = prof->str("container_image").value_or("");
  s.use_container = container == "pyxis" && (!named_image.empty() || !req.image.empty());
  if (s.use_container) {
    std::string image = !named_image.empty() ? named_image
                                             : (build_cache_dir_for(prof) / "containers" / (req.image + ".sqsh")).string();
    s.container.image = image_argument(image);
    s.container.mounts = !req.shape.mounts.empty() ? req.shape.mounts : prof ? prof->strings("mounts") : std::vector<std::string>{};
    fs::path root = req.job_dir.parent_path();
    s.container.mounts.push_back(root.string() + ":" + root.string());
    s.container.workdir = req.job_dir.string();
    s.task_argv.push_back("nemokit");
  } else {
    s.task_argv.push_back(self_executable().string());
  }
  s.task_argv.insert(s.task_argv.end(), req.task_args.begin(), req.task_args.end());
  return plan;
}

}  // namespace nemokit
