#pragma once
// The mounts a container needs, shared by RUN steps and `nemokit exec`. Call
// these only in a child that has its own (private) mount namespace.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

// Mounts overlayfs at `target`: `lowers` top first; read-only when `upper` is
// empty. Redirects and metacopy stay off so an upper folder is a complete,
// self-contained layer. The kernel's overlayfs, or fuse-overlayfs where the kernel refuses it in
// a user namespace (before Linux 5.11) or NEMOKIT_OVERLAY=fuse-overlayfs asks for it; a process
// that mounted calls finish_overlays() before it ends (src/dockerfile/fuse_overlay.cpp).
void mount_overlay(const std::filesystem::path& target, const std::vector<std::filesystem::path>& lowers,
                   const std::filesystem::path& upper, const std::filesystem::path& work);

// "kernel" (the default) or "fuse-overlayfs", from NEMOKIT_OVERLAY; another value is an error.
std::string overlay_driver();
// True when RUN steps get the kernel's overlayfs: NEMOKIT_OVERLAY does not ask for
// fuse-overlayfs, and in a user namespace the kernel mounts it there (tried once per process in
// a throwaway mount namespace; Linux 5.11 allows it). Callable from any process.
bool kernel_overlay_usable();
// fuse-overlayfs at `target`; `why` opens its errors (what made the kernel's overlayfs unusable).
void mount_fuse_overlay(const std::filesystem::path& target, const std::vector<std::filesystem::path>& lowers,
                        const std::filesystem::path& upper, const std::filesystem::path& work, const std::string& why);
// Unmounts this process's fuse-overlayfs mounts, waits for their daemons and rewrites their
// upper folders in overlayfs' format (opaque markers), so a layer is the same whichever driver
// made it. Nothing to do after kernel mounts.
void finish_overlays();

struct BindMount {
  std::filesystem::path source;  // on the host; inside `source_root` when that is set
  std::string target;            // inside the root
  bool read_only = false;
  // When set, `source` is a path inside this folder, resolved as the container at that root
  // would see it (symlinks never lead out of it): a RUN --mount=type=bind source.
  std::filesystem::path source_root;
  // When set, the command may write to the mount but its writes land here and are dropped
  // with this folder: a folder source gets an overlay, a file source a copy (RUN --mount rw).
  std::filesystem::path discard_writes_in;
};

struct TmpfsMount {
  std::string target;  // inside the root
  uint64_t size = 0;   // bytes; 0: the kernel's default (half the memory)
};

struct ContainerMounts {
  std::filesystem::path resolv_conf;  // host files copied for the container; empty: none
  std::filesystem::path hosts;
  std::vector<BindMount> binds;
  std::vector<TmpfsMount> tmpfs;
  bool new_proc = true;  // the caller is in a new PID namespace
};

// /proc, a minimal /dev (null zero full random urandom tty, pts, shm), /sys
// read-only, /etc/resolv.conf and /etc/hosts, then the binds, then the tmpfs mounts. Mount points
// the image lacks are created; their paths (relative to root, creation order) are
// returned so the caller can keep them out of a layer.
std::vector<std::string> mount_container_fs(const std::filesystem::path& root, const ContainerMounts& m);

// pivot_root into `root` and drop the old root.
void enter_root(const std::filesystem::path& root);

// Brings up "lo" in a fresh network namespace.
void loopback_up();

}  // namespace nemokit::dockerfile
