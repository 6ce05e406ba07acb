// The builder plugin: `nemokit build` requests, `nemokit image` (convert,
// inspect, ls) and `nemokit exec` (run a command in a built image).
#include <nemokit/plugin.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/exec_command.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/oci/image_cli.hpp"
#include "nemokit/runtime/run/paths.hpp"

namespace {

namespace fs = std::filesystem;

// Build requests carry build_cache_dir; commands read it from the environment,
// where the core puts a selected profile's (`nemokit -r P image ls`), by the
// rule the core follows too.
fs::path command_cache_dir() { return nemokit::rt::build_cache_dir(); }

// Stage images build from the installed container files:
// <prefix>/share/nemokit/containers, found from <prefix>/lib/nemokit/plugins/<this>.so.
fs::path installed_context() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&installed_context), &info) && info.dli_fname) {
    fs::path so = fs::absolute(info.dli_fname);
    return so.parent_path().parent_path().parent_path().parent_path() / "share" / "nemokit" / "containers";
  }
  return "/usr/share/nemokit/containers";
}

class OciBuilder : public nemokit::sdk::Plugin {
 public:
  int build(const nemokit::sdk::BuildCall& call) override {
    auto request = nemokit::dockerfile::parse_build_request(call.request_json, installed_context());
    auto build = [&] {
      auto outcome = nemokit::dockerfile::run_build(request);
      std::cerr << "built " << request.tag << ": " << outcome.steps_run << " steps run, " << outcome.steps_cached
                << " cached; image " << outcome.manifest_digest << "\n";
      return 0;
    };
    // Root builds as it is; an ordinary user builds as root of a user namespace (rootless).
    if (geteuid() == 0) return build();
    return nemokit::dockerfile::run_as_namespace_root(build, "nemokit build");
  }

  int command(const nemokit::sdk::CommandCall& call) override {
    const std::string& name = call.args.at(0);
    if (name == "image") {
      std::vector<std::string> rest(call.args.begin() + 1, call.args.end());
      return nemokit::oci::image_command(rest, command_cache_dir());
    }
    if (name == "exec") return nemokit::dockerfile::exec_command(call.args, command_cache_dir());
    throw std::runtime_error("builder_oci has no command `" + name + "`");
  }
};

}  // namespace

NEMOKIT_PLUGIN(OciBuilder)
