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

}  // namespace nemokit::rt::testing
