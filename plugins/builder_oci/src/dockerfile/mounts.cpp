#include "nemokit/dockerfile/mounts.hpp"

#include <fcntl.h>
#include <sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

void do_mount(const char* src, const fs::path& target, const char* type, unsigned long flags, const char* data,
              const std::string& what) {
  if (mount(src, target.c_str(), type, flags, data) != 0) sys_fail("mount " + what);
}

// Makes `rel` exist inside root as a folder (or an empty file), recording what
// it had to create. Returns the host path, or empty when the image has
// something else there (a symlink, say): then that mount is skipped.
fs::path mount_point(const fs::path& root, const std::string& rel, bool dir, std::vector<std::string>& created) {
  std::string clean;
  if (!clean_relative(rel, clean) || clean.empty()) return {};
  std::string sofar;
  size_t i = 0;
  while (true) {
    size_t j = clean.find('/', i);
    std::string part = clean.substr(0, j);
    bool last = j == std::string::npos;
    fs::path p = root / part;
    struct stat st;
    if (lstat(p.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) return {};
      if (!last && !S_ISDIR(st.st_mode)) return {};
      if (last && dir != S_ISDIR(st.st_mode)) return {};
    } else if (!last || dir) {
      if (mkdir(p.c_str(), 0755) != 0) sys_fail("mkdir " + p.string());
      created.push_back(part);
    } else {
      int fd = open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) sys_fail("creating " + p.string());
      close(fd);
      created.push_back(part);
    }
    if (last) return p;
    i = j + 1;
  }
}

// Not named bind: with <functional> in reach, a call whose last argument is a std::string finds
// std::bind by argument-dependent lookup, and that template binds the non-const paths better.
void bind_mount(const fs::path& src, const fs::path& dst, bool read_only, const std::string& what) {
  do_mount(src.c_str(), dst, nullptr, MS_BIND | MS_REC, nullptr, what);
  if (!read_only) return;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC;
  if (mount(nullptr, dst.c_str(), nullptr, flags, nullptr) == 0) return;
  // In a user namespace the flags of a mount made outside it (/sys nosuid,nodev,noexec on most
  // hosts) are locked: a remount must keep them or it fails with EPERM.
  struct statvfs sv;
  if (errno != EPERM || statvfs(dst.c_str(), &sv) != 0) sys_fail("mount " + what + " read-only");
  for (auto [st, ms] :
       {std::pair{ST_NOSUID, MS_NOSUID}, std::pair{ST_NODEV, MS_NODEV}, std::pair{ST_NOEXEC, MS_NOEXEC},
        std::pair{ST_NOATIME, MS_NOATIME}, std::pair{ST_NODIRATIME, MS_NODIRATIME}, std::pair{ST_RELATIME, MS_RELATIME}})
    if (sv.f_flag & st) flags |= ms;
  do_mount(nullptr, dst, nullptr, flags, nullptr, what + " read-only");
}

}  // namespace

void mount_overlay(const fs::path& target, const std::vector<fs::path>& lowers, const fs::path& upper, const fs::path& work);

namespace {

// What a writable mount shows: `source` with the command's writes kept in `scratch`, never in
// `source` (the build context or another stage's layers).
fs::path writable_copy(const fs::path& source, bool dir, const fs::path& scratch) {
  if (!dir) {
    fs::path copy = scratch / "file";
    fs::copy_file(source, copy, fs::copy_options::overwrite_existing);
    return copy;
  }
  for (auto sub : {"upper", "work", "mnt"}) fs::create_directories(scratch / sub);
  mount_overlay(scratch / "mnt", {source}, scratch / "upper", scratch / "work");
  return scratch / "mnt";
}

}  // namespace

int mount_overlay_new_api(const fs::path& target, const std::vector<fs::path>& lowers, const fs::path& upper,
                          const fs::path& work, bool userxattr);

namespace {

// The kernel's overlayfs at `target`: 0, or the errno it refused with.
int mount_kernel_overlay(const fs::path& target, const std::vector<fs::path>& lowers, const fs::path& upper,
                         const fs::path& work, bool userxattr) {
  int err = mount_overlay_new_api(target, lowers, upper, work, userxattr);
  if (err != EINVAL && err != ENOSYS) return err;
  // Kernels before 6.8: one option string, at most a page long.
  std::string opts = "lowerdir=";
  for (size_t i = 0; i < lowers.size(); ++i) {
    std::string l = lowers[i].string();
    if (l.find_first_of(":,") != std::string::npos) throw BuildError(l + ": layer folder paths may not contain ':' or ','");
    opts += (i ? ":" : "") + l;
  }
  if (!upper.empty()) opts += ",upperdir=" + upper.string() + ",workdir=" + work.string();
  opts += userxattr ? ",redirect_dir=nofollow,metacopy=off,index=off,xino=off,userxattr"
                    : ",redirect_dir=off,metacopy=off,index=off,xino=off";
  if (opts.size() > 4000) throw BuildError("too many layers to mount at once (" + std::to_string(lowers.size()) + ")");
  return mount("overlay", target.c_str(), "overlay", 0, opts.c_str()) == 0 ? 0 : errno;
}

}  // namespace

void mount_overlay(const fs::path& target, const std::vector<fs::path>& lowers, const fs::path& upper, const fs::path& work) {
  if (overlay_driver() == "fuse-overlayfs")
    return mount_fuse_overlay(target, lowers, upper, work, "NEMOKIT_OVERLAY=fuse-overlayfs");
  // In a user namespace (rootless) overlayfs may only use user.* xattrs for its markers.
  bool userxattr = in_user_namespace();
  int err = mount_kernel_overlay(target, lowers, upper, work, userxattr);
  if (err == 0) return;
  // Kernels before 5.11 mount overlayfs for the initial namespace's root alone.
  if (err == EPERM && userxattr)
    return mount_fuse_overlay(target, lowers, upper, work,
                              "the kernel refused overlayfs in this user namespace (Linux 5.11 allows it)");
  errno = err;
  sys_fail("mount overlay at " + target.string() + " (" + std::to_string(lowers.size()) + " layers)");
}

bool kernel_overlay_usable() {
  if (overlay_driver() != "kernel") return false;
  if (!in_user_namespace()) return true;
  static const bool usable = [] {
    std::string pattern = (fs::temp_directory_path() / "nemokit-overlay-probe-XXXXXX").string();
    if (!mkdtemp(pattern.data())) return false;
    const fs::path scratch = pattern;
    for (auto sub : {"lower", "upper", "work", "mnt"}) fs::create_directory(scratch / sub);
    bool ok = true;
    try {
      run_in_child(
          [&] {
            int err = mount_kernel_overlay(scratch / "mnt", {scratch / "lower"}, scratch / "upper", scratch / "work", true);
            if (err != 0) throw BuildError(std::strerror(err));
          },
          "overlayfs probe", CLONE_NEWNS);
    } catch (const BuildError&) {
      ok = false;
    }
    std::error_code ec;
    fs::remove_all(scratch, ec);
    return ok;
  }();
  return usable;
}

std::vector<std::string> mount_container_fs(const fs::path& root, const ContainerMounts& m) {
  std::vector<std::string> created;
  if (fs::path p = mount_point(root, "proc", true, created); !p.empty()) {
    if (m.new_proc)
      do_mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "/proc");
    else
      bind_mount("/proc", p, false, "/proc");
  }
  if (fs::path p = mount_point(root, "sys", true, created); !p.empty()) bind_mount("/sys", p, true, "/sys");
  if (fs::path dev = mount_point(root, "dev", true, created); !dev.empty()) {
    do_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", "/dev");
    for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
      fs::path host = fs::path("/dev") / name;
      fs::path inside = dev / name;
      int fd = open(inside.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
      if (fd < 0) sys_fail("creating " + inside.string());
      close(fd);
      bind_mount(host, inside, false, "/dev/" + std::string(name));
    }
    for (auto [link, target] :
         {std::pair{"fd", "/proc/self/fd"}, std::pair{"stdin", "/proc/self/fd/0"}, std::pair{"stdout", "/proc/self/fd/1"},
          std::pair{"stderr", "/proc/self/fd/2"}, std::pair{"ptmx", "pts/ptmx"}})
      if (symlink(target, (dev / link).c_str()) != 0) sys_fail("symlink /dev/" + std::string(link));
    fs::create_directory(dev / "pts");
    do_mount("devpts", dev / "pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620", "/dev/pts");
    fs::create_directory(dev / "shm");
    do_mount("shm", dev / "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", "/dev/shm");
    fs::create_directory(dev / "mqueue");
  }
  if (!m.resolv_conf.empty())
    if (fs::path p = mount_point(root, "etc/resolv.conf", false, created); !p.empty())
      bind_mount(m.resolv_conf, p, true, "/etc/resolv.conf");
  if (!m.hosts.empty())
    if (fs::path p = mount_point(root, "etc/hosts", false, created); !p.empty()) bind_mount(m.hosts, p, true, "/etc/hosts");
  for (auto& b : m.binds) {
    fs::path source = b.source_root.empty() ? b.source : resolve_in_root(b.source_root, b.source.string(), true);
    struct stat st;
    if (stat(source.c_str(), &st) != 0) sys_fail("--mount " + b.source.string());
    if (!b.discard_writes_in.empty()) source = writable_copy(source, S_ISDIR(st.st_mode), b.discard_writes_in);
    // Through the image's own symlinks, but never out of its root.
    fs::path inside = resolve_in_root(root, b.target, true);
    std::string rel = fs::relative(inside, root).string();
    fs::path p = mount_point(root, rel, S_ISDIR(st.st_mode), created);
    if (p.empty())
      throw BuildError("--mount " + b.source.string() + ":" + b.target + ": cannot mount over what the image has there");
    bind_mount(source, p, b.read_only, b.target);
  }
  for (auto& t : m.tmpfs) {
    fs::path inside = resolve_in_root(root, t.target, true);
    fs::path p = mount_point(root, fs::relative(inside, root).string(), true, created);
    if (p.empty()) throw BuildError("--mount=type=tmpfs " + t.target + ": cannot mount over what the image has there");
    std::string opts = "mode=755";
    if (t.size) opts += ",size=" + std::to_string(t.size);
    do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str(), "tmpfs at " + t.target);
  }
  return created;
}

void enter_root(const fs::path& root) {
  // A mount namespace of its own first: pivot_root moves every process of the namespace whose
  // root is the old root, and a fuse-overlayfs daemon serving `root` must keep the host's.
  if (unshare(CLONE_NEWNS) != 0) sys_fail("unshare");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) sys_fail("making mounts private");
  // pivot_root needs the new root to be a mount point.
  do_mount(root.c_str(), root, nullptr, MS_BIND | MS_REC, nullptr, "root");
  if (chdir(root.c_str()) != 0) sys_fail("chdir " + root.string());
  if (syscall(SYS_pivot_root, ".", ".") != 0) sys_fail("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) sys_fail("detaching the old root");
  if (chdir("/") != 0) sys_fail("chdir /");
}

void loopback_up() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) sys_fail("socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  close(s);
}

}  // namespace nemokit::dockerfile
