// Where a runtime test writes its files: BUILD/<suite>/<name>, the suite's folder created.
#pragma once

#include <filesystem>
#include <string>

namespace nemokit::rt::testing {

inline std::string scratch_path(const std::string& suite, const std::string& name) {
  const std::string dir = std::string(NEMOKIT_BINARY_DIR) + "/" + suite;
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

// BUILD/<suite>/<name> as an empty folder: whatever an earlier run left there is removed.
inline std::filesystem::path fresh_dir(const std::string& suite, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(NEMOKIT_BINARY_DIR) / suite / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace nemokit::rt::testing
