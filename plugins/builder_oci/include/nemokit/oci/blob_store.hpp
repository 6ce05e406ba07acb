#pragma once
// Where image files live: a directory (OCI layout, extracted docker save) or an
// uncompressed tar (oci-archive, docker-archive). Members of a tar are read in
// place through their byte range, so nothing is unpacked to disk.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace nemokit::oci {

// A byte range of a file: a whole blob file, or one member of a tar.
struct BlobRange {
  std::filesystem::path file;
  uint64_t offset = 0;
  uint64_t size = 0;
  std::string name;  // how errors refer to it, e.g. "image.tar:blobs/sha256/ab.."
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // `relpath` is relative to the store root ("index.json", "blobs/sha256/<hex>");
  // paths that would leave the root are rejected.
  virtual std::optional<BlobRange> find(const std::string& relpath) const = 0;
  virtual std::string describe() const = 0;

  bool exists(const std::string& relpath) const { return find(relpath).has_value(); }
  // Reads a small member (JSON documents) whole; throws naming the member if missing.
  std::string read_text(const std::string& relpath, uint64_t max_size = 64u << 20) const;
};

std::unique_ptr<BlobStore> open_directory_store(const std::filesystem::path& dir);
std::unique_ptr<BlobStore> open_tar_store(const std::filesystem::path& tar_file);

// Reads exactly `size` bytes at `offset`; throws naming `what` on a short read.
void read_exact_at(int fd, uint64_t offset, void* buf, size_t size, const std::string& what);

// Normalizes a relative member path ("./a//b" -> "a/b"); nullopt if it is absolute
// or climbs out with "..".
std::optional<std::string> normalize_member_path(const std::string& path);

}  // namespace nemokit::oci
