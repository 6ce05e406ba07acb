#include "env/code/sandbox.hpp"

#include "env/code/cgroup.hpp"
#include "env/code/frame.hpp"
#include "env/code/sandbox_init.hpp"
#include "nemokit/dockerfile/exec_command.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/runtime/fd_io.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace nemokit::rl::code {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// Writes the repository under `dir` (a fresh tmpfs), owned by the sandbox's uid. Paths were
// checked by clean_repo_path when the repository was read or patched.
void write_repo(const fs::path& dir, const Files& files, uint32_t uid) {
  if (mkdir(dir.c_str(), 0755) != 0 || chown(dir.c_str(), uid, uid) != 0) sys_fail("mkdir " + dir.string());
  for (const auto& [rel, f] : files) {
    std::string path = clean_repo_path(rel);
    fs::path target = dir;
    for (size_t b = 0, slash; (slash = path.find('/', b)) != std::string::npos; b = slash + 1) {
      target /= path.substr(b, slash - b);
      if (mkdir(target.c_str(), 0755) == 0) {
        if (chown(target.c_str(), uid, uid) != 0) sys_fail("chown " + target.string());
      } else if (errno != EEXIST) {
        sys_fail("mkdir " + target.string());
      }
    }
    fs::path p = dir / path;
    if (!f.symlink.empty()) {
      if (symlink(f.symlink.c_str(), p.c_str()) != 0 || lchown(p.c_str(), uid, uid) != 0) sys_fail("symlink " + p.string());
      continue;
    }
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f.executable ? 0755 : 0644);
    if (fd < 0) sys_fail("creating " + p.string());
    if (!rt::write_all(fd, f.content)) {
      int err = errno;
      close(fd);
      errno = err;
      sys_fail("writing " + p.string() + " (the repository is larger than the sandbox's disk limit?)");
    }
    if (fchown(fd, uid, uid) != 0) sys_fail("chown " + p.string());
    close(fd);
  }
}

// In the keeper: namespaces, the tmpfs, the repository, the overlay; then init.
[[noreturn]] void keeper(int sock, const SandboxConfig& cfg, const fs::path& base, const Files& repo, uint32_t uid,
                         const Cgroup* cgroup) {
  try {
    // Nothing the host has open (checkpoints, other sandboxes' sockets) may reach the sandbox: its
    // socket becomes fd 3 (close-on-exec, so commands do not get it either), the rest is closed.
    if (sock != 3 && dup2(sock, 3) < 0) sys_fail("dup2");
    sock = 3;
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    if (syscall(SYS_close_range, 4u, ~0u, 0u) != 0)
      for (int fd = 4; fd < 65536; ++fd) close(fd);
    if (cgroup && !cgroup->enter()) throw std::runtime_error("cannot enter the sandbox's cgroup");
    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) sys_fail("unshare");
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) sys_fail("making mounts private");
    std::string opts = "mode=755,size=" + std::to_string(cfg.limits.disk_bytes);
    if (mount("tmpfs", base.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) sys_fail("tmpfs at " + base.string());
    for (const char* d : {"upper", "work", "root", "lower"})
      if (mkdir((base / d).c_str(), 0755) != 0) sys_fail("mkdir " + (base / d).string());
    fs::path lower = "/";
    if (!cfg.rootfs.empty()) {
      if (fs::is_directory(cfg.rootfs)) {
        lower = cfg.rootfs;
      } else {
        dockerfile::LoopDevice loop = dockerfile::attach_loop_device(cfg.rootfs);
        if (mount(loop.path.c_str(), (base / "lower").c_str(), "squashfs", MS_RDONLY, nullptr) != 0)
          sys_fail("mounting " + cfg.rootfs.string() + " (squashfs)");
        close(loop.fd);
        lower = base / "lower";
      }
    }
    write_repo(base / "upper" / "repo", repo, uid);
    dockerfile::mount_overlay(base / "root", {lower}, base / "upper", base / "work");
    pid_t init = fork();
    if (init < 0) sys_fail("fork");
    if (init == 0) {
      // Init dies with the keeper, and with init the whole PID namespace. (Should the keeper die
      // before this line, the host's end of the socket is closed too and init ends at its EOF.)
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      sandbox_init(sock, cfg.limits, uid, base / "root");
    }
    close(sock);
    int status;
    while (waitpid(init, &status, 0) < 0 && errno == EINTR) {
    }
    _exit(0);
  } catch (const std::exception& e) {
    send_frame(sock, {{"error", e.what()}});
    _exit(1);
  }
}

uint32_t next_uid(uint32_t base) {
  // Distinct per sandbox (and per process on a node), so RLIMIT_NPROC counts one sandbox only.
  static std::atomic<uint32_t> counter{0};
  uint32_t n = counter++;
  return base + ((static_cast<uint32_t>(getpid()) * 977u + n) % (1u << 24));
}

}  // namespace

Sandbox::Sandbox(const SandboxConfig& config, const Files& repo) : config_(config) {
  if (geteuid() != 0) throw std::runtime_error("the code sandbox needs root (mount and PID namespaces, overlayfs)");
  if (!config_.rootfs.empty() && !fs::exists(config_.rootfs))
    throw std::runtime_error(config_.rootfs.string() + ": no such image folder or .sqsh (environments.code_execution.rootfs)");
  uid_ = next_uid(config_.uid_base);
  std::string why_not;
  cgroup_ = Cgroup::create(config_.limits.memory_bytes, config_.limits.max_processes, why_not);
  char tmpl[] = "/tmp/nemokit-sandbox-XXXXXX";
  if (!mkdtemp(tmpl)) sys_fail("mkdtemp /tmp/nemokit-sandbox-XXXXXX");
  mountpoint_ = tmpl;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    fs::remove(mountpoint_);
    sys_fail("socketpair");
  }
  keeper_ = fork();
  if (keeper_ < 0) {
    close(sv[0]);
    close(sv[1]);
    fs::remove(mountpoint_);
    sys_fail("fork");
  }
  if (keeper_ == 0) {
    close(sv[0]);
    keeper(sv[1], config_, mountpoint_, repo, uid_, cgroup_.get());
  }
  close(sv[1]);
  sock_ = sv[0];
  auto hello = recv_frame(sock_, Clock::now() + std::chrono::seconds(60));
  if (!hello || !hello->value("ready", false)) {
    std::string why = hello && hello->contains("error") ? (*hello)["error"].get<std::string>() : "it did not start in 60 s";
    stop();
    throw std::runtime_error("code sandbox: " + why);
  }
}

Sandbox::~Sandbox() { stop(); }

void Sandbox::stop() {
  if (keeper_ > 0) {
    kill(keeper_, SIGKILL);  // init follows (parent-death signal), then its namespace
    while (waitpid(keeper_, nullptr, 0) < 0 && errno == EINTR) {
    }
    keeper_ = -1;
  }
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
  dead_ = true;
  cgroup_.reset();
  std::error_code ec;
  // The tmpfs was mounted in the keeper's namespace only, so this is an empty folder again.
  if (!mountpoint_.empty()) fs::remove(mountpoint_, ec);
  mountpoint_.clear();
}

CommandResult Sandbox::run(const std::string& command) {
  std::lock_guard lock(mu_);
  CommandResult r;
  if (dead_) {
    r.note = "the sandbox has ended";
    return r;
  }
  // The sandbox enforces the wall limit itself; this deadline only catches a sandbox gone wrong.
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long long>(config_.limits.wall_seconds * 1000) + 15000);
  std::optional<nlohmann::json> reply;
  if (send_frame(sock_, {{"command", command}})) reply = recv_frame(sock_, deadline);
  if (!reply || reply->contains("error")) {
    r.note = reply ? "sandbox: " + (*reply)["error"].get<std::string>() : "the sandbox stopped answering";
    stop();
    return r;
  }
  r.exit_code = reply->value("exit_code", -1);
  r.timed_out = reply->value("timed_out", false);
  r.output = reply->value("output", std::string());
  r.output_dropped = reply->value("dropped", size_t{0});
  r.note = reply->value("note", std::string());
  return r;
}

}  // namespace nemokit::rl::code
