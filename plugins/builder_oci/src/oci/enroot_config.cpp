#include "nemokit/oci/enroot_config.hpp"

#include "nemokit/oci/error.hpp"
#include "nemokit/runtime/shell_quote.hpp"

namespace nemokit::oci {

using nlohmann::json;
using rt::shell_quote;

namespace {

std::vector<std::string> string_list(const json& cfg, const char* key) {
  std::vector<std::string> out;
  if (!cfg.contains(key) || cfg[key].is_null()) return out;
  if (!cfg[key].is_array()) throw Error(std::string("image config: config.") + key + " is not a list");
  for (auto& v : cfg[key]) {
    if (!v.is_string()) throw Error(std::string("image config: config.") + key + " holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

EnrootFiles enroot_files(const json& image_config) {
  json cfg = image_config.value("config", json::object());
  if (!cfg.is_object()) cfg = json::object();
  EnrootFiles out;

  std::string fstab;
  if (cfg.contains("Volumes") && cfg["Volumes"].is_object())
    for (auto& [vol, _] : cfg["Volumes"].items())
      fstab += "${ENROOT_ROOTFS}" + vol + " " + vol + " none x-create=dir,bind,rw,nosuid,nodev\n";
  out.files.push_back({"etc/fstab", fstab});

  std::string environment;
  for (auto& e : string_list(cfg, "Env")) environment += e + "\n";
  out.files.push_back({"etc/environment", environment});

  std::string rc;
  if (cfg.contains("Labels") && cfg["Labels"].is_object()) {
    for (auto& [key, value] : cfg["Labels"].items())
      rc += "# " + key + " " + (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
    if (!rc.empty()) rc += "\n";
  }
  std::string workdir = cfg.value("WorkingDir", "");
  if (workdir.empty()) workdir = "/";
  out.workdir = workdir;
  auto entrypoint = string_list(cfg, "Entrypoint");
  auto cmd = string_list(cfg, "Cmd");
  if (entrypoint.empty() && cmd.empty()) cmd = {"/bin/sh"};
  std::string ep_words, cmd_words;
  for (auto& w : entrypoint) ep_words += " " + shell_quote(w);
  for (auto& w : cmd) cmd_words += " " + shell_quote(w);
  rc += "mkdir -p " + shell_quote(workdir) + " 2> /dev/null\n";
  rc += "cd " + shell_quote(workdir) + " && unset OLDPWD || exit 1\n\n";
  rc += "if [ -s /etc/rc.local ]; then\n    . /etc/rc.local\nfi\n\n";
  rc += "if [ $# -gt 0 ]; then\n    exec" + ep_words + " \"$@\"\nelse\n    exec" + ep_words + cmd_words + "\nfi\n";
  out.files.push_back({"etc/rc", rc});

  out.files.push_back({"etc/rc.local",
                       "# This file is sourced by /etc/rc when the container starts.\n"
                       "# It can be used to manipulate the entrypoint or the command of the container.\n"});
  return out;
}

}  // namespace nemokit::oci
