#include "nemokit/dockerfile/exec_image.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/exec_command.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/squashfs_unpack.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

}  // namespace

ImageLower kernel_mount(const fs::path& image, const fs::path& mountpoint) {
  LoopDevice loop = attach_loop_device(image);
  if (mount(loop.path.c_str(), mountpoint.c_str(), "squashfs", MS_RDONLY, nullptr) != 0) {
    int err = errno;
    close(loop.fd);  // AUTOCLEAR frees the device
    errno = err;
    sys_fail("mounting " + image.string());
  }
  close(loop.fd);  // the mount holds the device now; AUTOCLEAR frees it with the mount
  return {mountpoint, "kernel"};
}

bool fuse_usable() {
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

ImageLower fuse_mount(const fs::path& squashfuse, const fs::path& image, const fs::path& mountpoint) {
  struct stat before;
  if (stat(mountpoint.c_str(), &before) != 0) sys_fail(mountpoint.string());
  pid_t pid = fork();
  if (pid < 0) sys_fail("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // allow_other: the command may switch to the image's other users (FUSE serves only the
    // mounter otherwise); default_permissions: then the kernel checks their modes.
    execl(squashfuse.c_str(), "squashfuse", "-f", "-o", "allow_other,default_permissions", image.c_str(), mountpoint.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 3000; ++i) {  // 30 s
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      throw BuildError(squashfuse.string() + " could not mount " + image.string() + " (exit code " +
                       std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) + ")");
    struct stat now;
    if (stat(mountpoint.c_str(), &now) == 0 && now.st_dev != before.st_dev) return {mountpoint, "squashfuse", pid};
    usleep(10000);
  }
  kill(pid, SIGKILL);
  throw BuildError(squashfuse.string() + " did not mount " + image.string() + " within 30 s");
}

namespace {

std::string short_hash(const std::string& s) { return rt::Sha256::digest_of(s).substr(7, 16); }

// The image unpacked under <cache>/exec/<path hash>-<version hash>: made once per version of
// the .sqsh file (size, mtime, inode), under an exclusive lock; used under a shared one, so an
// older version is removed only when no exec uses it.
ImageLower unpacked(const fs::path& image, const fs::path& cache) {
  struct stat st;
  if (stat(image.c_str(), &st) != 0) sys_fail(image.string());
  fs::path top = cache / "exec";
  fs::create_directories(top);
  std::string key = short_hash(fs::absolute(image).string());
  std::string version = short_hash(std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                                   std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ino));
  fs::path dir = top / (key + "-" + version);
  int lock = open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock < 0) sys_fail(dir.string() + ".lock");
  auto take = [&](int how) {
    while (flock(lock, how) != 0)
      if (errno != EINTR) sys_fail("locking " + dir.string());
  };
  take(LOCK_SH);
  // Linux converts a flock lock by dropping it first, so two execs upgrading at once cannot
  // deadlock; the second finds the tree made.
  if (!fs::is_directory(dir)) take(LOCK_EX);
  if (!fs::is_directory(dir)) {
    std::cerr << "nemokit exec: unpacking " << image.string() << " into " << dir.string()
              << " (FUSE is not usable here: once per version of the image)\n";
    fs::path tmp = top / (key + "-" + version + ".tmp");
    fs::remove_all(tmp);
    fs::create_directory(tmp);
    try {
      auto r = oci::unpack_squashfs(image, tmp);
      if (r.owners_kept)
        std::cerr << "nemokit exec: " << r.owners_kept << " entries keep your own owner: no subordinate range maps theirs\n";
    } catch (const oci::Error& e) {
      fs::remove_all(tmp);
      throw BuildError(e.what());
    }
    fs::rename(tmp, dir);
  }
  take(LOCK_SH);
  // Older versions of this image go once no exec holds them.
  std::error_code ec;
  for (auto& e : fs::directory_iterator(top, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(key + "-", 0) != 0 || !name.ends_with(".lock") || e.path().string() == dir.string() + ".lock") continue;
    int other = open(e.path().c_str(), O_RDWR | O_CLOEXEC);
    if (other < 0) continue;
    if (flock(other, LOCK_EX | LOCK_NB) == 0) {
      fs::path old = e.path().parent_path() / e.path().stem();
      fs::remove_all(old, ec);
      fs::remove_all(old.string() + ".tmp", ec);
      fs::remove(e.path(), ec);
    }
    close(other);
  }
  return {dir, "unpacked", -1, lock};
}

}  // namespace

ImageLower show_image(const fs::path& image, const fs::path& mountpoint, const fs::path& build_cache_dir) {
  if (!in_user_namespace()) return kernel_mount(image, mountpoint);
  fs::path squashfuse = find_program("squashfuse");
  if (!squashfuse.empty() && fuse_usable()) return fuse_mount(squashfuse, image, mountpoint);
  return unpacked(image, build_cache_dir);
}

}  // namespace nemokit::dockerfile
