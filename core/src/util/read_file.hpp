#pragma once

#include <filesystem>
#include <string_view>

namespace nemokit {

// Writes `content` to `path` so that readers see either the old file or the whole new one:
// a temporary file in the same folder, fsync, rename, fsync of the folder. Creates parent
// folders. Throws std::runtime_error naming the path on failure (the temporary is removed).
void write_file_atomic(const std::filesystem::path& path, std::string_view content, unsigned mode = 0644);

// Reads a whole file; throws std::runtime_error naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace nemokit
