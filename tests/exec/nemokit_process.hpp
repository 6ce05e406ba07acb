// The exec tests' helpers: the shared process runner, file reader and binary (tests/support), and
// a fresh folder per test under the build tree.
#pragma once

#include <filesystem>
#include <string>

#include "support/files.hpp"
#include "support/process.hpp"
#include "support/remove_when_passed.hpp"

namespace nemokit::test {

// A fresh folder under the build tree for one test.
inline std::filesystem::path fresh_dir(const std::string& name) {
  auto d = std::filesystem::path(NEMOKIT_BINARY_DIR) / "tests" / "exec" / "work" / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  remove_when_passed(d);
  return d;
}

}  // namespace nemokit::test
