#pragma once
// One image layer as a squashfs in overlayfs' own form, ready to be mounted as a lower folder of
// the builder's overlays: whiteouts (.wh.NAME) become 0:0 character devices named NAME, and an
// opaque marker (.wh..wh..opq) becomes the xattr `opaque_xattr` on its folder
// (trusted.overlay.opaque for root's overlayfs, user.overlay.opaque with userxattr). Everything
// else is the layer's entries as they are, owners and xattrs included; a layer may not forge
// overlayfs' own xattrs, which are dropped. A folder the layer names only as a parent is 0:0
// 0755 with mtime 0, where an unpacking tool makes it with the time of unpacking: either way it
// shows over the lower layers' folder, as in containerd's overlay snapshots.
//
// Writing this file replaces unpacking the layer into thousands of files: one sequential write,
// compressed by the block processor's workers, and with a block cache the image's own squashfs
// later copies these blocks instead of compressing the layer again.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/squashfs_writer.hpp"

namespace nemokit::oci {

// For a caller that keeps a copy of the layer's blob: `copy` gets the blob's bytes in order while
// the layer is read (from the reading thread), and `digest` is set to the blob's "sha256:..." once
// it is written, so the blob is read and hashed once for both.
struct BlobCopy {
  std::function<void(const void*, size_t)> copy;
  std::string digest;
};

// Reads `layer` (digests checked as it streams) and writes `dest` atomically. Throws Error naming
// `label` and the entry on bad input; what squashfs cannot hold (an xattr of another namespace)
// is dropped and said in `warnings`.
SquashfsStats write_layer_squashfs(const Layer& layer, const std::string& label, const std::filesystem::path& dest,
                                   const SquashfsOptions& options, const std::string& opaque_xattr,
                                   std::vector<std::string>& warnings, BlobCopy* blob_copy = nullptr);

}  // namespace nemokit::oci
