#pragma once
// Image -> squashfs in one streaming pass: layers are read top first, each entry
// is placed in the merged tree or dropped when an upper layer hides it, and
// file contents go straight to the squashfs block processor.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/squashfs_writer.hpp"

namespace nemokit::oci {

struct ConvertOptions {
  SquashfsOptions squashfs;
  bool write_enroot_files = true;  // /etc/rc, /etc/environment, /etc/fstab, /etc/rc.local
  bool progress = false;           // bytes read, rate and ETA on stderr (rt::Progress)
  bool handle_signals = true;      // SIGINT/SIGTERM abort cleanly (no partial file)
};

struct ConvertResult {
  uint64_t output_bytes = 0;
  uint64_t stored_bytes_read = 0;  // layer blobs as stored
  uint64_t file_bytes = 0;         // file contents written
  uint64_t inodes = 0;
  size_t layers = 0;
  uint64_t cached_blocks = 0;      // with a block cache: data blocks copied from it
  uint64_t compressed_blocks = 0;  // and those compressed
  std::vector<std::string> warnings;
};

// Converts `image` to `dest`; `dest` appears atomically or not at all.
ConvertResult convert_image(const Image& image, const std::filesystem::path& dest, const ConvertOptions& options);
ConvertResult convert_image(const std::string& source_spec, const std::filesystem::path& dest, const ConvertOptions& options);

}  // namespace nemokit::oci
