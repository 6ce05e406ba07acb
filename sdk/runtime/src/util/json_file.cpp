#include "nemokit/runtime/json_file.hpp"

#include <fstream>
#include <stdexcept>

namespace nemokit::rt {

nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(file.string() + ": not valid JSON: " + json_error_text(e));
  }
}

std::string json_error_text(const nlohmann::json::exception& e) {
  std::string text = e.what();
  if (const size_t close = text.find("] "); text.rfind("[json.exception.", 0) == 0 && close != std::string::npos)
    text.erase(0, close + 2);
  return text;
}

}  // namespace nemokit::rt
