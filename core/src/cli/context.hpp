#pragma once

#include "cli/args.hpp"
#include "plugins/plugin_host.hpp"
#include "profiles/profiles.hpp"

#include "nemokit/runtime/artifacts.hpp"

#include <iostream>
#include <optional>

namespace nemokit::cli {

// What a command gets: its arguments, and the plugin registry and profiles, read on first use
// so that commands which need neither (--version, --help) stay instant.
class Context {
 public:
  explicit Context(ParsedArgs a) : args(std::move(a)) {}
  ParsedArgs args;

  const PluginRegistry& registry() {
    if (!registry_) registry_ = PluginRegistry::discover(PluginRegistry::default_search_path());
    return *registry_;
  }
  const ProfileSet& profiles() {
    if (!profiles_) profiles_ = ProfileSet::load_default();
    return *profiles_;
  }
  // The artifact store: $NEMOKIT_ARTIFACTS_ROOT, else env.toml's [artifacts] root, else the
  // user's cache folder.
  rt::artifacts::Store artifact_store() { return rt::artifacts::Store::open_default(profiles().artifacts_root()); }
  // The profile named by --run or --batch, if any.
  const Profile* selected_profile() {
    const auto& name = args.run_profile ? args.run_profile : args.batch_profile;
    return name ? &profiles().get(*name) : nullptr;
  }

 private:
  std::optional<PluginRegistry> registry_;
  std::optional<ProfileSet> profiles_;
};

int cmd_run(Context& ctx);        // run FAMILY STAGE [SUBSTAGE]
int cmd_data(Context& ctx);       // data prep FAMILY STAGE [SUBSTAGE]
int cmd_pipe(Context& ctx);       // pipe FAMILY
int cmd_build(Context& ctx);      // build IMAGE | build -f Dockerfile --tag NAME
int cmd_plugins(Context& ctx);    // plugins [info NAME]
int cmd_recipes(Context& ctx);
int cmd_profiles(Context& ctx);
int cmd_model(Context& ctx);      // model generate|init|export|import|lora-merge|adapter-export|eval
int cmd_eval(Context& ctx);       // eval FAMILY: run FAMILY eval
int cmd_model_eval(const std::vector<std::string>& raw);  // model eval A [B ...]: eval FAMILY with the models named
int cmd_tokenizer(Context& ctx);
int cmd_complete(Context& ctx);   // words for the bash completion script
int cmd_plugin_command(Context& ctx, const PluginFile& provider);  // a command a plugin declares
int cmd_jobs(Context& ctx);       // jobs: the job folders with their live state
int cmd_logs(Context& ctx);       // logs JOB [-f]
int cmd_cancel(Context& ctx);     // cancel JOB
int cmd_report(Context& ctx);     // report JOB [--out FILE]: the job's HTML page with SVG plots
int cmd_probe(Context& ctx);      // probe [--run|--batch PROFILE]: one line per task of the profile's shape
int cmd_artifacts(Context& ctx);  // artifacts list | show REF | lineage REF [--svg FILE]
int cmd_task(Context& ctx);       // __task JOB_DIR: one rank of a job (hidden)
int cmd_probe_task(Context& ctx); // __probe: one probe task (hidden)
// Runs the stage of a job folder in this process (its config.toml, job.json's command); ranks
// come from RANK or the Slurm step. Returns the stage's exit code.
int run_task(Context& ctx, const std::filesystem::path& job_dir);

}  // namespace nemokit::cli
