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

// The parts show_image chooses between; the builder mounts base layers with them too.
// The kernel's squashfs driver on a loop device (root of the initial user namespace).
ImageLower kernel_mount(const std::filesystem::path& image, const std::filesystem::path& mountpoint);
// True when this process may open /dev/fuse. It is often root's alone (crw-------), as on this
// project's test machines; on most cluster nodes it is 0666 and enroot's squashfuse path relies
// on that.
bool fuse_usable();
// squashfuse in the foreground, as a child killed with this process (PDEATHSIG), so nothing keeps
// the mount namespace alive after the work ends. SIGKILL, not SIGTERM: on SIGTERM it tries to
// unmount, which fails noisily once the namespace is being torn down, and a read-only image has
// nothing to flush. Returns once the mount point's device changes.
ImageLower fuse_mount(const std::filesystem::path& squashfuse, const std::filesystem::path& image,
                      const std::filesystem::path& mountpoint);

}  // namespace nemokit::dockerfile
