// `nemokit build`: a stage's image, nemokit-base or any Dockerfile, through the builder plugin,
// here or as a Slurm job on the profile's build partition.
#include "cli/base_image.hpp"
#include "cli/context.hpp"
#include "exec/job.hpp"
#include "exec/sbatch_script.hpp"
#include "exec/slurm_follow.hpp"
#include "exec/slurm_plan.hpp"
#include "exec/slurm_submit.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace nemokit::cli {
namespace fs = std::filesystem;

// `nemokit build IMAGE --run/--batch PROFILE`: the same build as a CPU job on the profile's
// build_partition with build_time, this nemokit running `build IMAGE` on the node.
static int submit_build(Context& ctx, const Profile& prof) {
  if (ctx.args.positionals.size() != 1 || ctx.args.value("-f") || ctx.args.value("--file"))
    throw UserError("build --run/--batch takes a stage image name (build -f runs here only)");
  const std::string& image = ctx.args.positionals[0];
  std::vector<std::string> args = {"build", image};
  if (ctx.args.flag("--no-cache")) args.push_back("--no-cache");
  if (auto p = ctx.args.value("--platform")) args.insert(args.end(), {"--platform", *p});
  if (ctx.args.dry_run) {  // the script it would submit, as `run --dry-run` prints it
    const fs::path job = job_root_for(&prof) / ("<time>-build-" + image);
    std::cout << "# plan: Slurm, sbatch --parsable " << (job / "sbatch.sh").string() << "\n"
              << render_sbatch_script(plan_build_job(prof, job, image, args).script);
    return 0;
  }
  JobDir job = JobDir::create(job_root_for(&prof), "build", image, "");
  std::string id = submit_slurm_job(job, plan_build_job(prof, job.path, image, args));
  std::cerr << "nemokit: submitted build of " << image << " as Slurm job " << id << ", job folder " << job.path.string() << "\n";
  if (ctx.args.batch_profile) {
    std::cout << id << "\n";
    return 0;
  }
  return follow_slurm_job(job, id);
}

int cmd_build(Context& ctx) {
  const PluginRegistry& reg = ctx.registry();
  auto file = ctx.args.value("-f") ? ctx.args.value("-f") : ctx.args.value("--file");
  nlohmann::json req;
  if (file) {
    auto tag = ctx.args.value("--tag");
    if (!tag) throw UserError("build -f " + *file + ": --tag NAME is required (the image becomes containers/NAME.sqsh)");
    if (!ctx.args.positionals.empty())
      throw UserError("build -f takes no IMAGE argument (got \"" + ctx.args.positionals[0] + "\")");
    fs::path df = fs::absolute(*file);
    if (!fs::is_regular_file(df)) throw UserError(df.string() + ": Dockerfile not found");
    req["dockerfile_path"] = df.string();
    req["context"] = fs::absolute(ctx.args.value("--context").value_or(df.parent_path().string())).string();
    req["tag"] = *tag;
  } else {
    if (ctx.args.positionals.size() != 1) throw UserError("usage: nemokit build IMAGE | nemokit build -f DOCKERFILE --tag NAME");
    const std::string& name = ctx.args.positionals[0];
    const ImageEntry* im = reg.image(name);
    if (im) {
      req["image"] = name;
      req["tag"] = name;
      req["plugin"] = im->plugin->name;
      req["dockerfile_resource"] = im->dockerfile;
      req["dockerfile_text"] = *im->plugin->resource(im->dockerfile);
    } else if (name == kBaseImageName) {
      // The stage images' base: no plugin's, the install's own (its program, runtime and plugins).
      BaseImageBuild base = installed_base_image(build_cache_dir_for(ctx.selected_profile()), !ctx.args.dry_run);
      req["dockerfile_path"] = base.dockerfile.string();
      req["context"] = base.context.string();
      req["image"] = name;
      req["tag"] = name;
    } else {
      std::string known = kBaseImageName;
      for (const auto& e : reg.images()) known += ", " + e.name;
      throw UserError("no plugin declares image \"" + name + "\" (images: " + known + ")");
    }
  }
  req["build_cache_dir"] = build_cache_dir_for(ctx.selected_profile()).string();
  req["no_cache"] = ctx.args.flag("--no-cache");
  req["network"] = ctx.args.flag("--network=none") ? "none" : "host";
  req["build_args"] = ctx.args.values("--build-arg");
  // Where each secret is (a file or a variable), never its bytes: --dry-run prints the request.
  req["secrets"] = ctx.args.values("--secret");
  if (auto t = ctx.args.value("--target")) req["target"] = *t;
  // Checked by the builder, which knows the platforms (an unknown one is named there).
  if (auto p = ctx.args.value("--platform")) req["platform"] = *p;
  if (auto o = ctx.args.value("--output")) req["output"] = *o;
  const PluginFile* builder = reg.builder();
  if (!builder) throw std::runtime_error("no builder plugin found (is builder_oci on the plugin path?)");
  if (const Profile* prof = ctx.selected_profile(); prof && prof->executor() == "slurm") return submit_build(ctx, *prof);
  if (ctx.args.dry_run) {
    std::cout << "# build plan (builder " << builder->name << ")\n" << req.dump(2) << "\n";
    return 0;
  }
  std::string request = req.dump();
  nemokit_call_v1 call{};
  call.kind = NEMOKIT_CALL_BUILD;
  call.config_json = request.c_str();
  LoadedPlugin plugin = reg.load(*builder);
  std::string error;
  int rc = plugin.invoke(call, error);
  if (rc != 0) std::cerr << "nemokit build: " << (error.empty() ? "failed" : error) << "\n";
  return rc;
}

}  // namespace nemokit::cli
