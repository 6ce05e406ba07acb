#include "env/code/sandbox_init.hpp"

#include "env/code/frame.hpp"
#include "nemokit/dockerfile/mounts.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nemokit::rl::code {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void set_limit(int resource, rlim_t soft, rlim_t hard) {
  rlimit r{soft, hard};
  setrlimit(resource, &r);
}

// The command's process: limits, the sandbox uid, no way back to privileges, then the shell.
[[noreturn]] void exec_command(const std::string& command, const SandboxLimits& lim, uint32_t uid, int out_fd) {
  setsid();
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull > 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  if (out_fd > 2) close(out_fd);
  rlim_t cpu = static_cast<rlim_t>(lim.cpu_seconds);
  set_limit(RLIMIT_CPU, cpu, cpu + 1);  // SIGXCPU first, SIGKILL a second later
  set_limit(RLIMIT_AS, lim.memory_bytes, lim.memory_bytes);
  set_limit(RLIMIT_NPROC, static_cast<rlim_t>(lim.max_processes), static_cast<rlim_t>(lim.max_processes));
  set_limit(RLIMIT_FSIZE, lim.disk_bytes, lim.disk_bytes);
  set_limit(RLIMIT_CORE, 0, 0);
  set_limit(RLIMIT_NOFILE, 256, 256);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
  if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) _exit(125);
  if (chdir("/repo") != 0) _exit(125);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  const char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp",
                        "TMPDIR=/tmp", "LANG=C.UTF-8", "HOSTNAME=sandbox", nullptr};
  execve("/bin/sh", const_cast<char* const*>(argv), const_cast<char* const*>(envp));
  dprintf(2, "/bin/sh: %s\n", std::strerror(errno));
  _exit(127);
}

// Everything in the namespace but this process, until no child is left: ECHILD means nothing
// else lives in the namespace, as every process there descends from this one. Repeated because a
// process forked while one kill(-1) pass ran may have escaped it.
void kill_all_and_reap() {
  while (true) {
    kill(-1, SIGKILL);
    pid_t p;
    while ((p = waitpid(-1, nullptr, WNOHANG)) > 0) {
    }
    if (p < 0 && errno == ECHILD) return;
    usleep(1000);
  }
}

std::string describe_signal(int sig, const SandboxLimits& lim) {
  if (sig == SIGXCPU) return "CPU time limit (" + std::to_string(lim.cpu_seconds) + " s)";
  if (sig == SIGXFSZ) return "file size limit";
  return std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
}

nlohmann::json run_one(int sock, const std::string& command, const SandboxLimits& lim, uint32_t uid) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {{"error", std::string("pipe: ") + std::strerror(errno)}};
  pid_t child = fork();
  if (child < 0) {
    close(p[0]);
    close(p[1]);
    return {{"error", std::string("fork: ") + std::strerror(errno)}};
  }
  if (child == 0) {
    close(p[0]);
    int out = dup(p[1]);  // without O_CLOEXEC, so it survives exec
    exec_command(command, lim, uid, out);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  std::string output;
  size_t dropped = 0;
  bool timed_out = false, exited = false, host_gone = false;
  int status = 0;
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(lim.wall_seconds * 1000));
  auto drain = [&] {
    char buf[65536];
    while (true) {
      ssize_t n = read(p[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      size_t keep = std::min(static_cast<size_t>(n), lim.output_bytes - std::min(lim.output_bytes, output.size()));
      output.append(buf, keep);
      dropped += static_cast<size_t>(n) - keep;
    }
  };
  while (!exited) {
    pollfd fds[2] = {{p[0], POLLIN, 0}, {sock, POLLIN, 0}};
    poll(fds, 2, 20);
    drain();
    if (fds[1].revents) host_gone = true;  // the host never writes while a command runs
    int st = 0;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0)
      if (w == child) {
        status = st;
        exited = true;
      }
    if (host_gone) break;
    if (!exited && Clock::now() >= deadline) {
      timed_out = true;
      kill(-1, SIGKILL);
      while ((w = waitpid(child, &st, 0)) < 0 && errno == EINTR) {
      }
      status = st;
      exited = true;
    }
  }
  drain();
  close(p[0]);
  // Background processes the command left would otherwise live on into the next command.
  kill_all_and_reap();
  if (host_gone) _exit(0);
  nlohmann::json r;
  r["output"] = output;
  r["dropped"] = dropped;
  r["timed_out"] = timed_out;
  if (timed_out) {
    r["exit_code"] = 128 + SIGKILL;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", lim.wall_seconds);
    r["note"] = std::string("wall time limit (") + secs + " s)";
  } else if (WIFSIGNALED(status)) {
    r["exit_code"] = 128 + WTERMSIG(status);
    r["note"] = describe_signal(WTERMSIG(status), lim);
  } else {
    r["exit_code"] = WEXITSTATUS(status);
  }
  if (dropped) r["note"] = r.value("note", std::string()) + (r.contains("note") ? "; " : "") + "output over the cap";
  return r;
}

void mount_tmp(const fs::path& dir, const char* size) {
  if (!fs::is_directory(dir) || fs::is_symlink(dir)) return;
  std::string opts = std::string("mode=1777,size=") + size;
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    throw std::runtime_error("mount tmpfs at " + dir.string() + ": " + std::strerror(errno));
}

}  // namespace

void sandbox_init(int sock, const SandboxLimits& limits, uint32_t uid, const fs::path& root) {
  try {
    dockerfile::ContainerMounts m;
    m.new_proc = true;
    dockerfile::mount_container_fs(root, m);
    // The host's temporary folders stay out of sight; the sandbox gets empty ones.
    std::string tmp_size = std::to_string(std::max<uint64_t>(limits.disk_bytes / 4, 1 << 20));
    mount_tmp(root / "tmp", tmp_size.c_str());
    mount_tmp(root / "var/tmp", tmp_size.c_str());
    sethostname("sandbox", 7);
    dockerfile::loopback_up();
    dockerfile::enter_root(root);
  } catch (const std::exception& e) {
    send_frame(sock, {{"error", std::string("sandbox setup: ") + e.what()}});
    _exit(1);
  }
  if (!send_frame(sock, {{"ready", true}})) _exit(0);
  while (true) {
    auto req = recv_frame(sock, Clock::now() + std::chrono::hours(24 * 365));
    if (!req || !req->contains("command") || !(*req)["command"].is_string()) _exit(0);
    if (!send_frame(sock, run_one(sock, (*req)["command"].get<std::string>(), limits, uid))) _exit(0);
  }
}

}  // namespace nemokit::rl::code
