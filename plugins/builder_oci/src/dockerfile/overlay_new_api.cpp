// overlayfs through the new mount API (fsopen/fsconfig/fsmount): each lower
// layer is its own "lowerdir+" parameter, so the number of layers is not
// limited by the one-page option string of mount(2). Kept apart from
// mounts.cpp because <linux/mount.h> and glibc's <sys/mount.h> clash.
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

// Returns 0, or the errno of the step that failed (EINVAL from "lowerdir+"
// means a kernel older than 6.8: the caller falls back to mount(2)). `userxattr`: overlayfs keeps its
// markers in user.overlay.* (the only ones a user namespace may write).
int mount_overlay_new_api(const std::filesystem::path& target, const std::vector<std::filesystem::path>& lowers,
                          const std::filesystem::path& upper, const std::filesystem::path& work, bool userxattr) {
  int fs = int(syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC));
  if (fs < 0) return errno;
  auto set = [&](const char* key, const std::string& value) {
    return syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0;
  };
  bool ok = true;
  for (auto& l : lowers) ok = ok && set("lowerdir+", l.string());
  if (ok && !upper.empty()) ok = set("upperdir", upper.string()) && set("workdir", work.string());
  if (ok && userxattr) ok = syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) == 0;
  // "off" still follows redirects, which userxattr refuses; "nofollow" creates none either.
  ok = ok && set("redirect_dir", userxattr ? "nofollow" : "off") && set("metacopy", "off") && set("index", "off") &&
       set("xino", "off");
  ok = ok && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0;
  int err = ok ? 0 : errno;
  int mnt = ok ? int(syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) : -1;
  if (ok && mnt < 0) err = errno;
  if (mnt >= 0) {
    if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) err = errno;
    close(mnt);
  }
  close(fs);
  return err;
}

}  // namespace nemokit::dockerfile
