#pragma once
// `nemokit image ...`: convert, inspect and list container images.
#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::oci {

// `args` are the words after `nemokit image`:
//   convert SRC DEST.sqsh [--comp zstd|gzip|xz|lz4] [--level N] [--block-size N] [--mtime EPOCH]
//   inspect SRC
//   ls
// SRC: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG] or a path
// whose format is detected. `ls` lists build_cache_dir/containers.
// Returns 0 on success, 1 on errors (one line on stderr), 2 on usage errors.
int image_command(const std::vector<std::string>& args, const std::filesystem::path& build_cache_dir);

}  // namespace nemokit::oci
