#pragma once
// Runs one command inside a root filesystem, without a container daemon: new
// mount, PID, UTS and IPC namespaces (and network, when asked), /proc, /dev,
// /sys, the host's resolv.conf and hosts, the given user, folder and
// environment. The command's output is streamed line by line with a prefix.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nemokit/dockerfile/mounts.hpp"

namespace nemokit::dockerfile {

// An overlay mounted (read-only) in the sandbox's mount namespace before the container's
// mounts, so a bind can take its source from it: another stage's tree for RUN --mount=from=.
struct ExtraOverlay {
  std::vector<std::filesystem::path> lowers;  // top first
  std::filesystem::path mountpoint;           // on the host
};

// A RUN --mount=type=secret file. Its bytes go to a tmpfs that only the sandbox's mount
// namespace sees, so they never touch the disk or the step's upper folder.
struct SecretFile {
  std::string target;  // inside the root
  std::string content;
  unsigned mode = 0400;
  unsigned uid = 0, gid = 0;
};

struct SandboxSpec {
  // The root: an overlay of `lowers` (top first) with `upper` when set,
  // mounted at `mountpoint`.
  std::vector<std::filesystem::path> lowers;
  std::filesystem::path upper, work, mountpoint;
  ContainerMounts mounts;
  std::vector<ExtraOverlay> overlays;
  std::vector<SecretFile> secrets;
  std::filesystem::path secrets_dir;  // an empty host folder the secrets' tmpfs is mounted on
  std::vector<std::string> argv;
  std::vector<std::string> env;  // K=V; PATH and HOME are added when missing
  std::string workdir = "/";
  bool create_workdir = true;        // mkdir -p as root before dropping privileges
  std::vector<std::string> volumes;  // made (owned by root) when missing, as buildah's RUN does
  std::string user;                  // empty: root
  bool network = true;               // false: a new, empty network namespace
  std::string hostname = "nemokit";
  std::string output_prefix;  // put before every output line; empty: output passes through
};

struct SandboxResult {
  int exit_code = 0;                         // 128+N when killed by signal N
  std::vector<std::string> created;          // mount points made inside the root (relative)
  std::vector<std::string> volumes_created;  // the entries of SandboxSpec::volumes that were missing
};

// Throws BuildError when the sandbox itself cannot be set up; a failing
// command is reported through exit_code.
SandboxResult run_sandboxed(const SandboxSpec& spec);

}  // namespace nemokit::dockerfile
