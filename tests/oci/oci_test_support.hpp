#pragma once
// Helpers for the oci tests: build layers and images (OCI layout, docker save)
// with libarchive, convert them, and read the result back through the kernel.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/squashfs_mount.hpp"

namespace ocitest {

namespace fs = std::filesystem;

// One entry of a hand-made layer.
struct TarEntry {
  enum Kind { File, Dir, Symlink, Hardlink, Fifo, CharDev, BlockDev } kind = File;
  std::string path;
  std::string data;    // File contents
  std::string target;  // Symlink / Hardlink target
  unsigned mode = 0644;
  unsigned uid = 0, gid = 0;
  int64_t mtime = 1700000000;
  unsigned dev_major = 0, dev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

TarEntry file_entry(std::string path, std::string data, unsigned mode = 0644);
TarEntry dir_entry(std::string path, unsigned mode = 0755);
TarEntry symlink_entry(std::string path, std::string target);
TarEntry hardlink_entry(std::string path, std::string target);

// An uncompressed pax tar of `entries`, in order.
std::string make_tar(const std::vector<TarEntry>& entries);
// GNU tar of real files: `tar -C root --numeric-owner --xattrs -cf - paths...`.
std::string tar_of_paths(const fs::path& root, const std::vector<std::string>& paths);
// "none", "gzip" or "zstd".
std::string compress(const std::string& tar, const std::string& how);

std::string sha256(const std::string& data);  // "sha256:<hex>"

struct LayerBlob {
  std::string tar;          // uncompressed
  std::string compression;  // none, gzip, zstd
};

nlohmann::json default_config(const std::vector<LayerBlob>& layers);

// Writes an OCI image layout; returns the directory. Layers bottom first.
fs::path write_oci_layout(const fs::path& dir, const std::vector<LayerBlob>& layers, const nlohmann::json& config,
                          const std::string& tag = "latest");
// Writes a classic `docker save` archive (uncompressed layers).
fs::path write_docker_archive(const fs::path& out, const std::vector<LayerBlob>& layers, const nlohmann::json& config,
                              const std::string& repo_tag = "test:latest");
// Packs a directory (e.g. an OCI layout) into an uncompressed tar file.
void tar_directory(const fs::path& dir, const fs::path& out);

// What a reader sees at one path.
struct Seen {
  char type = '?';  // d f l c b p s
  unsigned mode = 0, uid = 0, gid = 0;
  int64_t mtime = 0;
  uint64_t nlink = 0, ino = 0;
  std::string target;
  std::string content_hash;
  unsigned dev_major = 0, dev_minor = 0;
  std::map<std::string, std::string> xattrs;
  bool operator==(const Seen&) const = default;
};
using Tree = std::map<std::string, Seen>;  // relative path -> what is there

// Walks `root` (lstat, readlink, llistxattr, sha256 of contents). `only` limits it
// to these relative paths and what is below them.
Tree scan(const fs::path& root, const std::vector<std::string>& only = {});
std::string describe(const std::string& path, const Seen& s);

// A squashfs file mounted read-only through the kernel for the scope's life.
using nemokit::test::SquashfsMount;

bool running_as_root();

// A fresh directory under the build tree's temporary space, removed at exit.
fs::path scratch_dir(const std::string& name);

}  // namespace ocitest
