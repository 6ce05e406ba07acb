#pragma once
// Writes a squashfs image with libsquashfs: file contents go to the block
// processor (compressed by its worker threads) as layers stream by; inodes and
// directories are written from the merged tree at the end.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nemokit/oci/merged_tree.hpp"

namespace nemokit::oci {

struct SquashfsOptions {
  std::string compressor = "zstd";  // zstd, gzip, xz, lz4
  std::optional<int> level;         // compressor default when unset (zstd: kDefaultZstdLevel)
  uint32_t block_size = 128 * 1024;
  unsigned workers = 0;                // 0: one per core
  std::optional<int64_t> fixed_mtime;  // every inode and the super block get this time
  // Compressed data blocks kept between writes (block_cache.hpp); none when empty. A folder per
  // compressor setting is made under it.
  std::filesystem::path block_cache_dir;
  uint64_t block_cache_max_bytes = uint64_t(4) << 30;
};

// zstd level used unless told otherwise: close to the best size per second of
// work for images (level 15, mksquashfs's default, takes ~6x longer for ~10%).
constexpr int kDefaultZstdLevel = 3;

// Checks compressor name, level and block size; throws Error naming the option.
void validate(const SquashfsOptions& options);

struct SquashfsStats {
  uint64_t bytes_written = 0;
  uint64_t inodes = 0;
  uint64_t data_bytes_in = 0;
  uint64_t cached_blocks = 0;      // data blocks copied from the block cache
  uint64_t compressed_blocks = 0;  // data blocks compressed (and added to the cache)
};

class SquashfsWriter {
 public:
  SquashfsWriter(const std::filesystem::path& path, const SquashfsOptions& options);
  ~SquashfsWriter();
  SquashfsWriter(const SquashfsWriter&) = delete;
  SquashfsWriter& operator=(const SquashfsWriter&) = delete;

  // File contents: begin, append any number of times, end. The body's inode
  // is owned by the body and completed by finish().
  void begin_file(const std::shared_ptr<FileBody>& body);
  void append(const void* data, size_t size);
  void end_file();

  // Writes inodes, directories and tables, then the super block.
  SquashfsStats finish(const MergedTree& tree, std::vector<std::string>& warnings);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nemokit::oci
