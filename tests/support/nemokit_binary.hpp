// Where the tests find the nemokit program of this build (tests are built with
// NEMOKIT_BINARY_DIR, the build folder; see cmake/NemokitTesting.cmake).
#pragma once

#include <filesystem>

namespace nemokit::test {

inline std::filesystem::path nemokit_binary() { return std::filesystem::path(NEMOKIT_BINARY_DIR) / "bin" / "nemokit"; }

}  // namespace nemokit::test
