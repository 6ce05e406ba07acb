#pragma once

#include <filesystem>
#include <string>

namespace nemokit {

// Reads a whole file; throws std::runtime_error naming the path.
std::string read_file(const std::filesystem::path& path);

}  // namespace nemokit
