#pragma once
// Reading a whole JSON file, with errors that name it.

#include <nlohmann/json.hpp>

#include <filesystem>

namespace nemokit::rt {

// Throws std::runtime_error "FILE: cannot open" or "FILE: not valid JSON: ...".
nlohmann::json read_json_file(const std::filesystem::path& file);

}  // namespace nemokit::rt
