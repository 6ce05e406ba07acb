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

std::filesystem::path build_cache_dir(const std::string& configured) {
  if (!configured.empty()) return std::filesystem::absolute(expand_home(configured));
  if (const char* env = std::getenv("NEMOKIT_BUILD_CACHE_DIR"); env && *env) return std::filesystem::absolute(env);
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/tmp") / ".cache" / "nemokit";
}

}  // namespace nemokit::rt
