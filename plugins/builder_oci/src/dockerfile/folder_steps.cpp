#include "folder_steps.hpp"

#include <sched.h>

#include <algorithm>

#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_db.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

std::string workdir_path(Stage& s, const Instruction& ins, const Vars& vars, const WordOptions& words) {
  std::string wd = process_word(ins.args, vars, words, ins.args_where);
  if (wd.empty()) fail_at(ins.args_where, "WORKDIR needs a path");
  if (wd[0] != '/') wd = (fs::path(workdir_of(s)) / wd).lexically_normal().string();
  std::string clean;
  clean_relative(wd, clean);
  return "/" + clean;
}

void make_folders(const StepDirs& d, const std::vector<fs::path>& lowers, const std::vector<std::string>& paths,
                  const std::string& user, const std::string& what) {
  run_in_child(
      [&] {
        mount_overlay(d.mnt, lowers, d.upper, d.work);
        ResolvedUser owner = resolve_user(d.mnt, user.empty() ? "0" : user);
        for (auto& p : paths) mkdir_in_root(d.mnt, p, owner.uid, owner.gid);
      },
      what, CLONE_NEWNS);
}

std::vector<std::string> volumes_of(Stage& s) {
  std::vector<std::string> out;
  const nlohmann::json& config = config_of(s);
  if (config.contains("Volumes") && config["Volumes"].is_object())
    for (auto& [path, _] : config["Volumes"].items()) out.push_back(path);
  return out;
}

void drop_volume_changes(Stage& s, const fs::path& upper, const std::vector<std::string>& created) {
  for (auto& path : volumes_of(s)) {
    std::string clean;
    if (!clean_relative(path, clean) || clean.empty()) continue;
    fs::path in_upper = upper / clean;
    std::error_code ec;
    if (std::find(created.begin(), created.end(), path) == created.end()) {
      fs::remove_all(in_upper, ec);  // the lower layers' folder shows through again
      continue;
    }
    for (auto& child : fs::directory_iterator(in_upper, ec)) fs::remove_all(child.path(), ec);
  }
}

}  // namespace nemokit::dockerfile
