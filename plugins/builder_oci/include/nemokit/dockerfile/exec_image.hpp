#pragma once
// How `nemokit exec` shows an image's squashfs as a folder, the lower layer of its overlay:
// - root: the kernel's squashfs driver on a loop device (as enroot and pyxis do);
// - in a user namespace (an ordinary user) that driver may not be mounted, so squashfuse where
//   /dev/fuse can be opened (most cluster nodes), else the image unpacked once with libsquashfs
//   into <build_cache_dir>/exec/ and reused until the .sqsh file changes.
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace nemokit::dockerfile {

struct ImageLower {
  std::filesystem::path dir;  // the folder with the image's tree
  std::string how;            // "kernel", "squashfuse" or "unpacked"
  pid_t fuse_pid = -1;        // squashfuse serving `dir`; it ends with the calling process
  int lock_fd = -1;           // a shared lock on the unpacked tree, held while it is in use
};

// Call in the exec's own (private) mount namespace: `mountpoint` is an empty folder there.
// Throws BuildError naming what failed.
ImageLower show_image(const std::filesystem::path& image, const std::filesystem::path& mountpoint,
                      const std::filesystem::path& build_cache_dir);

}  // namespace nemokit::dockerfile
