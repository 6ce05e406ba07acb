#include "nemokit/runtime/json_file.hpp"

#include <fstream>
#include <stdexcept>

namespace nemokit::rt {

nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
  } catch (const nlohmann::json::exception&) {
    // out_of_range.406 is the one other error of parsing: a number too large for a double.
    throw std::runtime_error(file.string() + ": not valid JSON: a number is too large");
  }
}

}  // namespace nemokit::rt
