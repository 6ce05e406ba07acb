// Process layout: this process -> setup child (new namespaces; mounts the
// overlay) -> init (PID 1 of the new PID namespace; mounts /proc, enters the
// root) -> the command. PID 1 reaps orphans and its exit ends everything left.
#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/sandbox.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_db.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

using rt::write_all;  // failures ignored: the build's own stderr or info pipe gone

int wait_exit_code(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return 127;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

bool has_var(const std::vector<std::string>& env, const std::string& name) {
  for (auto& e : env)
    if (e.compare(0, name.size() + 1, name + "=") == 0) return true;
  return false;
}

// In the new root, as PID 1: drop to the user, chdir, exec the command in a
// child and reap everything until it ends.
[[noreturn]] void init_process(const SandboxSpec& spec, int out_fd, int info_fd) {
  try {
    auto created = mount_container_fs(spec.mountpoint, spec.mounts);
    for (auto& c : created) write_all(info_fd, "created " + c + "\n");
    if (sethostname(spec.hostname.data(), spec.hostname.size()) != 0) sys_fail("sethostname");
    if (!spec.network) loopback_up();
    ResolvedUser user = resolve_user(spec.mountpoint, spec.user.empty() ? "0" : spec.user);
    // As BuildKit does: a missing WORKDIR is made for the stage's user.
    if (spec.create_workdir) mkdir_in_root(spec.mountpoint, spec.workdir, user.uid, user.gid);
    for (auto& v : spec.volumes) {
      struct stat st;
      if (lstat(resolve_in_root(spec.mountpoint, v, true).c_str(), &st) == 0) continue;
      mkdir_in_root(spec.mountpoint, v);
      write_all(info_fd, "volume " + v + "\n");
    }
    umask(022);
    // A single-uid user namespace (rootless, no subordinate range) denies setgroups; asked
    // before entering the image, whose /proc may be missing.
    bool may_setgroups = !setgroups_denied();
    enter_root(spec.mountpoint);
    std::vector<std::string> env = spec.env;
    if (!has_var(env, "PATH")) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if (!has_var(env, "HOME")) env.push_back("HOME=" + user.home);
    if (!has_var(env, "HOSTNAME")) env.push_back("HOSTNAME=" + spec.hostname);
    if (chdir(spec.workdir.c_str()) != 0) sys_fail("WORKDIR " + spec.workdir);
    pid_t cmd = fork();
    if (cmd < 0) sys_fail("fork");
    if (cmd == 0) {
      if (may_setgroups && setgroups(user.groups.size(), user.groups.data()) != 0) _exit(125);
      if (setgid(user.gid) != 0 || setuid(user.uid) != 0) _exit(125);
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      dup2(out_fd, 1);
      dup2(out_fd, 2);
      std::vector<char*> argv, envp;
      for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      // execvpe looks the command up in the container's PATH.
      for (auto& e : env)
        if (e.compare(0, 5, "PATH=") == 0) setenv("PATH", e.c_str() + 5, 1);
      execvpe(argv[0], argv.data(), envp.data());
      std::string msg = spec.argv[0] + ": " + std::strerror(errno) + "\n";
      write_all(2, msg);
      _exit(errno == ENOENT ? 127 : 126);
    }
    close(out_fd);
    close(info_fd);
    reap_until_exit(cmd);
  } catch (const std::exception& e) {
    write_all(info_fd, std::string("error ") + e.what() + "\n");
    _exit(125);
  }
}

// Writes the secrets into a tmpfs private to this mount namespace and adds a read-only bind
// of each to the container's mounts.
void mount_secrets(SandboxSpec& spec) {
  if (spec.secrets.empty()) return;
  if (mount("tmpfs", spec.secrets_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=700") != 0)
    sys_fail("mounting a tmpfs for secrets");
  for (size_t i = 0; i < spec.secrets.size(); ++i) {
    const SecretFile& s = spec.secrets[i];
    fs::path file = spec.secrets_dir / std::to_string(i);
    int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || !write_all(fd, s.content) || fchown(fd, s.uid, s.gid) != 0 || fchmod(fd, s.mode) != 0)
      sys_fail("secret for " + s.target);
    close(fd);
    spec.mounts.binds.push_back(BindMount{file, s.target, true, {}, {}});
  }
}

// Streams `fd` to stderr, each line prefixed.
void relay(int fd, const std::string& prefix) {
  std::string pending;
  char buf[8192];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (prefix.empty()) {
      write_all(2, std::string(buf, size_t(n)));
      continue;
    }
    pending.append(buf, size_t(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      write_all(2, prefix + pending.substr(0, nl + 1));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) write_all(2, prefix + pending + "\n");
}

}  // namespace

SandboxResult run_sandboxed(const SandboxSpec& given) {
  SandboxSpec spec = given;  // the setup child adds the secrets' binds to its copy
  int out[2], info[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(info, O_CLOEXEC) != 0) sys_fail("pipe");
  // The command's end of the output pipe must survive exec.
  int cmd_out = dup(out[1]);
  const pid_t builder = getpid();
  pid_t setup = fork();
  if (setup < 0) sys_fail("fork");
  if (setup == 0) {
    // The step ends with the build (a killed or interrupted nemokit): this process goes, and
    // with it the PID namespace's init below, whose end kills everything the command started.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != builder) _exit(125);
    close(out[0]);
    close(info[0]);
    close(out[1]);
    try {
      int flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | (spec.network ? 0 : CLONE_NEWNET);
      if (unshare(flags) != 0) sys_fail("unshare");
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) sys_fail("making mounts private");
      mount_overlay(spec.mountpoint, spec.lowers, spec.upper, spec.work);
      for (auto& o : spec.overlays) mount_overlay(o.mountpoint, o.lowers, {}, {});
      mount_secrets(spec);
      // The PID namespace only now: its first child is its PID 1, which must be the command's
      // init, not a fuse-overlayfs daemon that mount_overlay started.
      if (unshare(CLONE_NEWPID) != 0) sys_fail("unshare");
      pid_t init = fork();
      if (init < 0) sys_fail("fork");
      if (init == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        init_process(spec, cmd_out, info[1]);
      }
      close(cmd_out);
      close(info[1]);
      const int code = wait_exit_code(init);
      finish_overlays();
      _exit(code);
    } catch (const std::exception& e) {
      write_all(info[1], std::string("error ") + e.what() + "\n");
      _exit(125);
    }
  }
  close(out[1]);
  close(cmd_out);
  close(info[1]);
  relay(out[0], spec.output_prefix);
  close(out[0]);
  std::string info_text;
  const int info_text_fds[] = {info[0]};
  rt::pump_until_eof(info_text_fds, [&](size_t, const char* data, size_t size) { info_text.append(data, size); });
  close(info[0]);
  SandboxResult result;
  result.exit_code = wait_exit_code(setup);
  size_t pos = 0;
  while (pos < info_text.size()) {
    size_t nl = info_text.find('\n', pos);
    if (nl == std::string::npos) nl = info_text.size();
    std::string line = info_text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.compare(0, 8, "created ") == 0)
      result.created.push_back(line.substr(8));
    else if (line.compare(0, 7, "volume ") == 0)
      result.volumes_created.push_back(line.substr(7));
    else if (line.compare(0, 6, "error ") == 0)
      throw BuildError(line.substr(6));
  }
  return result;
}

}  // namespace nemokit::dockerfile
