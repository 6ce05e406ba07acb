#pragma once
// `nemokit exec IMAGE_OR_SQSH [--mount SRC:DST[:ro]]... [--env K=V]... [--] [CMD...]`:
// runs a command in a squashfs image the way `enroot start` does. The image is
// shown read-only (exec_image.hpp: a loop mount for root; for an ordinary user,
// in a user namespace where it appears as root, squashfuse or an unpacked copy)
// under a tmpfs overlay (writes vanish on exit), in new mount, PID and IPC
// namespaces; /etc/environment is applied over the caller's environment and
// /etc/rc is sourced with the command as its arguments (so the image's WORKDIR
// and ENTRYPOINT apply).
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

// `args` are the words after `nemokit exec`. Returns the command's exit code,
// 1 for errors (one line on stderr), 2 for usage errors.
int exec_command(const std::vector<std::string>& args, const std::filesystem::path& build_cache_dir);

struct LoopDevice {
  std::string path;  // /dev/loopN
  int fd = -1;       // keeps the device until it is mounted; close it then
};

// Attaches `file` to a free loop device, read-only, detached automatically
// once nothing (fd or mount) uses it.
LoopDevice attach_loop_device(const std::filesystem::path& file);

}  // namespace nemokit::dockerfile
