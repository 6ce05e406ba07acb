#pragma once
// Reading a whole JSON file, with errors that name it.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace nemokit::rt {

// Throws std::runtime_error "FILE: cannot open" or "FILE: not valid JSON: ...".
nlohmann::json read_json_file(const std::filesystem::path& file);

// The JSON library's message without its "[json.exception.parse_error.101] " prefix, for errors
// that name their file and key themselves: "syntax error while parsing value - ...".
std::string json_error_text(const nlohmann::json::exception& e);

}  // namespace nemokit::rt
