// fuse-overlayfs (Debian's fuse-overlayfs) where the kernel refuses overlayfs in a user namespace
// (kernels before 5.11), or where NEMOKIT_OVERLAY=fuse-overlayfs asks for it. The daemon runs in
// the foreground as a child of the process that mounts, dies with it (PDEATHSIG) and writes
// through (writeback=0), so every write a step made is in the upper folder when the step's
// command has ended. finish_overlays() unmounts, waits for the daemons and rewrites their upper
// folders in overlayfs' own format, so a layer reads the same whichever driver made it:
//   fuse-overlayfs marks an opaque folder with the xattr user.fuseoverlayfs.opaque, a file
//   .wh..wh..opq and a whiteout device .wh..opq; overlayfs with user.overlay.opaque (in a user
//   namespace) or trusted.overlay.opaque. Whiteouts are 0/0 devices in both (fuse-overlayfs
//   falls back to .wh.NAME files where it may not make devices: those become devices too).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

struct FuseOverlay {
  pid_t daemon;
  fs::path target, upper;
  std::vector<fs::path> lowers;
};

std::vector<FuseOverlay>& mounted() {
  static std::vector<FuseOverlay> list;  // this process's, in mount order
  return list;
}

// Everything a daemon wrote to its stderr (a memory file, read when it fails).
std::string read_log(int fd) {
  std::string text;
  if (lseek(fd, 0, SEEK_SET) != 0) return text;
  const int fds[] = {fd};
  rt::pump_until_eof(fds, [&](size_t, const char* data, size_t size) { text.append(data, size); });
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool is_fuse_mount(const fs::path& p) {
  struct statfs sf;
  return statfs(p.c_str(), &sf) == 0 && long(sf.f_type) == kFuseSuperMagic;
}

bool is_whiteout_device(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }

// Whether `rel` is anything in a lower layer: only then does an opaque marker hide something.
// fuse-overlayfs marks every folder it creates opaque; overlayfs only one that replaced another.
bool in_lowers(const std::vector<fs::path>& lowers, const fs::path& rel) {
  struct stat st;
  for (const fs::path& l : lowers)
    if (lstat((l / rel).c_str(), &st) == 0) return true;
  return false;
}

// One upper folder from fuse-overlayfs' markers to overlayfs' (see the top of the file).
void normalize_upper(const fs::path& upper, const fs::path& rel, const std::vector<fs::path>& lowers, const char* opaque_xattr) {
  const fs::path dir = rel.empty() ? upper : upper / rel;
  bool opaque = lgetxattr(dir.c_str(), "user.fuseoverlayfs.opaque", nullptr, 0) >= 0;
  lremovexattr(dir.c_str(), "user.fuseoverlayfs.opaque");
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir)) {
    const fs::path p = e.path();
    const std::string name = p.filename().string();
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) throw BuildError("fuse-overlayfs layer: " + p.string() + ": " + std::strerror(errno));
    if (name == ".wh..wh..opq") {
      opaque = true;
      fs::remove(p);
    } else if (name == ".wh..opq" && is_whiteout_device(st)) {
      fs::remove(p);
    } else if (name.rfind(".wh.", 0) == 0 && S_ISREG(st.st_mode)) {
      const fs::path hidden = dir / name.substr(4);
      fs::remove(p);
      if (mknod(hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
        throw BuildError("fuse-overlayfs layer: cannot record the deletion of " + hidden.string() +
                         " as a whiteout: " + std::strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(p);
    }
  }
  if (opaque && !rel.empty() && in_lowers(lowers, rel) && lsetxattr(dir.c_str(), opaque_xattr, "y", 1, 0) != 0)
    throw BuildError("fuse-overlayfs layer: marking " + dir.string() + " opaque: " + std::strerror(errno));
  for (const fs::path& d : subdirs) normalize_upper(upper, rel / d.filename(), lowers, opaque_xattr);
}

}  // namespace

std::string overlay_driver() {
  const char* e = std::getenv("NEMOKIT_OVERLAY");
  const std::string d = e ? e : "";
  if (d.empty() || d == "kernel") return "kernel";
  if (d == "fuse-overlayfs") return d;
  throw BuildError("NEMOKIT_OVERLAY=" + d + ": expected \"kernel\" or \"fuse-overlayfs\"");
}

void mount_fuse_overlay(const fs::path& target, const std::vector<fs::path>& lowers, const fs::path& upper, const fs::path& work,
                        const std::string& why) {
  const fs::path program = find_program("fuse-overlayfs");
  if (program.empty())
    throw BuildError(why + ": install Debian's fuse-overlayfs (apt-get install fuse-overlayfs), or build as root");
  std::string opts = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); ++i) opts += (i ? ":" : "") + lowers[i].string();
  if (!upper.empty()) opts += ",upperdir=" + upper.string() + ",workdir=" + work.string();
  // Write through; the image's other users (USER app) reach the files, the kernel checking modes.
  opts += ",writeback=0,allow_other,default_permissions";
  int log = memfd_create("fuse-overlayfs", MFD_CLOEXEC);
  if (log < 0) throw BuildError("fuse-overlayfs: memfd_create: " + std::string(std::strerror(errno)));
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    throw BuildError("fuse-overlayfs: fork: " + std::string(std::strerror(errno)));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the parent is already gone
    dup2(log, 1);
    dup2(log, 2);
    execl(program.c_str(), "fuse-overlayfs", "-f", "-o", opts.c_str(), target.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!is_fuse_mount(target)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      std::string text = read_log(log);
      close(log);
      throw BuildError(why + "; fuse-overlayfs at " + target.string() + " failed (exit " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) + ")" +
                       (text.empty() ? "" : ": " + text));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(log);
      throw BuildError(why + "; fuse-overlayfs did not mount " + target.string() + " within 30 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  close(log);
  mounted().push_back({pid, target, upper, lowers});
}

void finish_overlays() {
  auto& list = mounted();
  const char* opaque_xattr = in_user_namespace() ? "user.overlay.opaque" : "trusted.overlay.opaque";
  for (auto it = list.rbegin(); it != list.rend(); ++it) {
    // Detached: mounts made inside the root (proc, binds) go with it. The daemon ends once the
    // file system is released.
    if (umount2(it->target.c_str(), MNT_DETACH) != 0 && errno != EINVAL)
      throw BuildError("unmounting fuse-overlayfs at " + it->target.string() + ": " + std::strerror(errno));
    // Writes went through to the upper folder as they were made: a daemon that does not end
    // (something still holds the file system) is stopped rather than waited for.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(it->daemon, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(it->daemon, SIGKILL);
        waitpid(it->daemon, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!it->upper.empty()) normalize_upper(it->upper, {}, it->lowers, opaque_xattr);
  }
  list.clear();
}

}  // namespace nemokit::dockerfile
