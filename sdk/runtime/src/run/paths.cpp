#include "nemokit/runtime/run/paths.hpp"

#include <cstdlib>

namespace nemokit::rt {

std::filesystem::path expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home ? home : "/") / path.substr(path.size() > 1 ? 2 : 1);
  }
  return path;
}

}  // namespace nemokit::rt
