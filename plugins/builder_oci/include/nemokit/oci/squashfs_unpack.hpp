#pragma once
// A squashfs image unpacked into a folder with libsquashfs: what `nemokit exec` runs from when
// it may not mount the image (an ordinary user where /dev/fuse is root's alone; the kernel's
// squashfs driver cannot be mounted in a user namespace).
#include <cstdint>
#include <filesystem>

namespace nemokit::oci {

struct UnpackResult {
  uint64_t entries = 0;
  uint64_t bytes = 0;        // file data written
  uint64_t owners_kept = 0;  // entries whose owner could not be set stay the caller's (no mapping)
  uint64_t skipped = 0;      // device nodes, which a user namespace may not create
};

// Writes every entry of `image` under `dest` (an empty folder that exists) with its owner, mode,
// mtime, xattrs and hard links. Owners the caller's user namespace does not map are left as the
// caller's and counted; device nodes are skipped and counted. Throws oci::Error naming the entry.
UnpackResult unpack_squashfs(const std::filesystem::path& image, const std::filesystem::path& dest);

}  // namespace nemokit::oci
