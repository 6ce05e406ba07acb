#pragma once
// A throwaway, locked-down copy of a repository to run commands in (tests, the model's tools).
//
// Layout: this process -> keeper (new mount, PID, network, IPC and UTS namespaces; a size-capped
// tmpfs holding an overlay's upper folder, with the repository at /repo; the overlay over a
// read-only root: the host's / or a configured image folder or .sqsh) -> init (PID 1 of the new
// PID namespace; /proc, a minimal /dev, /sys read-only, fresh /tmp; pivot_root into the overlay)
// which runs each command as an unprivileged uid of its own, with no_new_privs, CPU, address
// space, process and file size limits (a cgroup v2 memory/pids group when the host delegates
// one), a wall-clock deadline and an output cap. After every command init kills whatever is left
// (kill(-1) from PID 1 of the namespace). Ending the session kills the keeper; init dies with it
// (parent-death signal) and the kernel ends every process of the namespace and drops its mounts.
// Nothing is ever written on the host's file system but an empty mount point folder.
// Needs root (namespaces, mounts).

#include "env/code/patch.hpp"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace nemokit::rl::code {

struct SandboxLimits {
  double wall_seconds = 60;              // per command
  int cpu_seconds = 30;                  // per process (RLIMIT_CPU)
  uint64_t memory_bytes = 2ull << 30;    // cgroup memory.max, else RLIMIT_AS per process
  int max_processes = 64;                // cgroup pids.max, else RLIMIT_NPROC of the sandbox's uid
  size_t output_bytes = 64 << 10;        // kept of stdout+stderr together; the rest is counted
  uint64_t disk_bytes = 256ull << 20;    // the tmpfs holding every write (and RLIMIT_FSIZE)
};

struct SandboxConfig {
  SandboxLimits limits;
  std::filesystem::path rootfs;          // empty: the host's /; else an image folder or .sqsh file
  uint32_t uid_base = 2900000000u;       // sandboxes run as uid_base + a per-sandbox number
};

struct CommandResult {
  int exit_code = -1;                    // 128 + signal when killed
  bool timed_out = false;
  std::string output;                    // at most limits.output_bytes
  size_t output_dropped = 0;             // bytes beyond the cap
  std::string note;                      // why it ended, when not by itself: "wall time limit", ...
};

class Cgroup;

class Sandbox {
 public:
  // Throws std::runtime_error saying what failed (not root, no overlayfs, a bad rootfs).
  Sandbox(const SandboxConfig& config, const Files& repo);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs `command` with /bin/sh -c in /repo. Never throws for what the command does.
  CommandResult run(const std::string& command);
  uint32_t uid() const { return uid_; }

 private:
  void stop();
  SandboxConfig config_;
  std::filesystem::path mountpoint_;
  std::unique_ptr<Cgroup> cgroup_;
  pid_t keeper_ = -1;
  int sock_ = -1;
  uint32_t uid_ = 0;
  bool dead_ = false;
  std::mutex mu_;
};

}  // namespace nemokit::rl::code
