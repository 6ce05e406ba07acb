// RUN: the command in a sandbox over the stage's layers (sandbox.cpp), with its --mount
// flags (run_mounts.cpp) and --network; the upper folder becomes the layer.
#include "build_driver.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "folder_steps.hpp"
#include "foreign_exec.hpp"
#include "run_mounts.hpp"
#include "nemokit/dockerfile/sandbox.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/oci/platform.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

void BuildDriver::run_step(Stage& s, const Instruction& ins) {
  bool network = req_.network;
  std::vector<RunMount> mounts;
  for (auto& f : ins.flags) {
    if (f.name == "mount") {
      mounts.push_back(parse_run_mount(f, vars_of(s), words(), workdir_of(s)));
    } else if (f.name == "network") {
      if (f.value == "none")
        network = false;
      else if (f.value == "host" || f.value == "default")
        network = req_.network;
      else
        fail_at(f.where, "--network=" + f.value + ": use default, none or host");
    } else {
      fail_at(f.where, "RUN --" + f.name + " is not supported by this builder");
    }
  }
  std::vector<std::string> argv;
  if (ins.json_form) {
    argv = ins.json_args;
    if (argv.empty()) fail_at(ins.args_where, "RUN [] has no command");
  } else if (!ins.heredocs.empty()) {
    if (ins.heredoc_only) {
      argv = shell_command(s, ins.heredocs[0].content);
    } else {
      std::string script = ins.args + "\n";
      for (auto& h : ins.heredocs) script += h.content + h.name + "\n";
      argv = shell_command(s, script);
    }
  } else {
    argv = shell_command(s, ins.args);
  }
  // ARGs reach RUN as environment variables unless ENV has the same name.
  std::vector<std::string> env = env_list(s);
  std::set<std::string> env_names;
  for (auto& e : env) env_names.insert(e.substr(0, e.find('=')));
  for (auto& [k, v] : s.args)
    if (!env_names.count(k)) env.push_back(k + "=" + v);
  std::string user = config_of(s).value("User", "");
  std::string workdir = workdir_of(s);
  json key = {{"op", "RUN"}, {"argv", argv}, {"env", env}, {"user", user}, {"workdir", workdir}, {"network", network}};
  std::vector<std::string> volumes = volumes_of(s);
  if (!volumes.empty()) key["volumes"] = volumes;
  RunMountSources mount_sources{req_.context, &ignore_, req_.build_cache_dir, &req_.secrets,
                                [&](const std::string& from, const Location& where) { return tree_of(from, where); }};
  if (!mounts.empty()) key["mounts"] = run_mounts_key(mounts, mount_sources);
  // What a command does can depend on the machine that runs it; the host's own platform stays
  // out of the key, so the keys of builds without --platform are those they always were.
  const bool foreign = !(s.platform == oci::host_platform());
  if (foreign) key["platform"] = s.platform.str();
  std::string prefix = step_label_ + " | ";
  layer_step(s, key.dump(), ins.original, [&](StepDirs& d) {
    if (foreign)
      if (std::optional<std::string> why = foreign_exec_problem(s.platform)) fail_at(ins.where, "RUN: " + *why);
    SandboxSpec sp;
    sp.lowers = lowers(s);
    sp.upper = d.upper;
    sp.work = d.work;
    sp.mountpoint = d.mnt;
    for (auto [host, name] : {std::pair{"/etc/resolv.conf", "resolv.conf"}, std::pair{"/etc/hosts", "hosts"}}) {
      std::error_code ec;
      fs::copy_file(host, d.base / name, fs::copy_options::overwrite_existing, ec);
      if (!ec) (std::string(name) == "hosts" ? sp.mounts.hosts : sp.mounts.resolv_conf) = d.base / name;
    }
    sp.argv = argv;
    sp.env = env;
    sp.workdir = workdir;
    sp.user = user;
    sp.volumes = volumes;
    sp.network = network;
    sp.output_prefix = prefix;
    SandboxResult r;
    try {
      auto locks = add_run_mounts(mounts, mount_sources, d.base, sp);
      r = run_sandboxed(sp);
    } catch (const BuildError& e) {
      fail_at(ins.where, "RUN: " + std::string(e.what()));
    }
    if (r.exit_code != 0)
      fail_at(ins.where, "RUN " + ins.args.substr(0, 200) + ": the command failed with exit code " + std::to_string(r.exit_code) +
                             single_uid_hint());
    // Mount points the sandbox had to create are not the command's changes.
    for (auto it = r.created.rbegin(); it != r.created.rend(); ++it) {
      fs::path p = d.upper / *it;
      struct stat st;
      if (lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode))
        rmdir(p.c_str());
      else if (S_ISREG(st.st_mode) && st.st_size == 0)
        unlink(p.c_str());
    }
    drop_volume_changes(s, d.upper, r.volumes_created);
  });
}

}  // namespace nemokit::dockerfile
