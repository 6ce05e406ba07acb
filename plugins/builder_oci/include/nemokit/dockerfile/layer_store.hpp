#pragma once
// Layers of images being built, under <build_cache_dir>/build:
//   blobs/sha256/<hex>       layer blobs as they go into the OCI layout
//   layers/<diff hex>/       a step's layer in overlayfs form (whiteouts are 0:0 character
//                            devices, opaque folders carry trusted.overlay.opaque=y), ready to
//                            be a lowerdir
//   layers/<diff hex>.sqsh   a base image's layer in the same form as one squashfs file,
//                            mounted as the lowerdir while a build uses it (or unpacked into
//                            layers/<diff hex>/ where squashfs cannot be mounted)
//   tmp/                     work folders of running steps, mount points of base layers
// (layers-userns/ instead of layers/ in a user namespace: see user_namespace.hpp.)
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/layer_squashfs.hpp"
#include "nemokit/oci/squashfs_writer.hpp"

namespace nemokit::dockerfile {

struct LayerRef {
  std::string diff_id;     // sha256 of the uncompressed tar
  std::string digest;      // sha256 of the blob
  std::string media_type;  // OCI layer media type of the blob
  uint64_t size = 0;       // blob bytes
};

// How base image layers are kept. Unpacking a base creates its thousands of files one by one,
// which is most of a cold build; a squashfs file per layer is one sequential write, its blocks
// feed the block cache the image's own squashfs then copies, and it holds one inode where a
// cluster's file system counts them. It needs a mount: the kernel's squashfs driver on a loop
// device for root, squashfuse (with a /dev/fuse the user may open) in a user namespace.
enum class BaseLayerForm { folders, squashfs };

// NEMOKIT_BASE_LAYERS=squashfs|folders, else squashfs where this process can mount it (root with
// CAP_SYS_ADMIN and /dev/loop-control; in a user namespace, squashfuse, /dev/fuse and the
// kernel's overlayfs), else folders. Throws
// BuildError for another value.
BaseLayerForm base_layer_form();

// NEMOKIT_SQUASHFS_CACHE_MB: the cap on the squashfs block cache (default 4096 MiB); nullopt
// when 0 turns it off. Throws BuildError for a value that is not a size.
std::optional<uint64_t> squashfs_block_cache_bytes();

class LayerStore {
 public:
  explicit LayerStore(const std::filesystem::path& build_cache_dir);
  ~LayerStore();  // unmounts the base layers it mounted
  LayerStore(const LayerStore&) = delete;
  LayerStore& operator=(const LayerStore&) = delete;

  const std::filesystem::path& root() const { return root_; }
  // The layer's tree as a folder, for an overlay's lowerdir: its unpacked folder, or its
  // squashfs mounted under tmp/ (once per store, in this process's mount namespace; a
  // squashfs that does not mount is unpacked instead, with a warning).
  std::filesystem::path layer_dir(const LayerRef& l) const;
  std::filesystem::path blob_path(const std::string& digest) const;
  bool has(const LayerRef& l) const;

  // Keeps a base image layer (checked against its digests while read) in the store's
  // BaseLayerForm, and its blob, unless both are here already.
  LayerRef import(const oci::Layer& layer, const std::string& label);

  // The squashfs settings of base layers and of the image's squashfs alike, so that the image
  // copies the base's blocks from the block cache (build/squashfs-blocks) instead of
  // compressing them again.
  oci::SquashfsOptions squashfs_options() const;

  // A fresh empty folder under tmp/ (removed by the caller or the next clean()).
  std::filesystem::path temp_dir(const std::string& hint) const;

  // Turns the upper folder of a finished step into a layer: the tar (with
  // .wh. whiteouts) is written as a zstd blob and the folder moves to
  // layers/. Returns nullopt when the step changed nothing.
  std::optional<LayerRef> commit(const std::filesystem::path& upper);

  // An empty folder to put under every overlay (overlayfs needs a lowerdir).
  std::filesystem::path empty_dir() const;

 private:
  std::filesystem::path folder_of(const LayerRef& l) const;
  std::filesystem::path squashfs_of(const LayerRef& l) const;
  bool tree_kept(const LayerRef& l) const;  // its folder, or its squashfs file where those are used
  // Unpacks the layer into its folder (overlayfs form); `blob_copy` as write_layer_squashfs takes it.
  void unpack(const oci::Layer& layer, const std::string& label, const std::filesystem::path& folder,
              oci::BlobCopy* blob_copy = nullptr) const;

  std::filesystem::path root_;
  BaseLayerForm form_;
  struct Mounted {
    std::filesystem::path dir;
    pid_t fuse_pid = -1;
  };
  mutable std::filesystem::path mount_root_;               // tmp/lowers-<pid>-..., made on first use
  mutable std::map<std::string, Mounted> mounted_;          // by diff_id
};

// Writes the tar of an overlayfs upper folder to `blob` (zstd) and returns the
// digests; `entries` counts what went in.
LayerRef write_layer_blob(const std::filesystem::path& upper, const std::filesystem::path& blob, uint64_t& entries);

}  // namespace nemokit::dockerfile
