// Commands a plugin declares in its manifest (the builder's image, exec, ...): nemokit hands the
// words after the command's name to the plugin's COMMAND call.
#include "cli/context.hpp"
#include "exec/slurm_plan.hpp"

#include <cstdlib>
#include <iostream>

namespace nemokit::cli {

namespace {
int invoke_command(Context& ctx, const PluginFile& provider, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  nemokit_call_v1 call{};
  call.kind = NEMOKIT_CALL_COMMAND;
  call.argc = static_cast<int>(argv.size());
  call.argv = argv.data();
  LoadedPlugin plugin = ctx.registry().load(provider);
  std::string error;
  int rc = plugin.invoke(call, error);
  if (rc != 0 && !error.empty()) std::cerr << "nemokit " << args[0] << ": " << error << "\n";
  return rc;
}
}  // namespace

int cmd_plugin_command(Context& ctx, const PluginFile& provider) {
  // Plugin commands see the environment, not the profile: a profile named before the command
  // (`nemokit -r CLUSTER image ls`) hands them its build_cache_dir the way build requests get it.
  if (const Profile* prof = ctx.selected_profile()) ::setenv("NEMOKIT_BUILD_CACHE_DIR", build_cache_dir_for(prof).c_str(), 1);
  std::vector<std::string> args{ctx.args.command};
  args.insert(args.end(), ctx.args.raw.begin(), ctx.args.raw.end());
  return invoke_command(ctx, provider, args);
}

}  // namespace nemokit::cli
