// Every test process publishes into an artifact store of its own, never the user's
// (~/.cache/nemokit/artifacts, or env.toml's [artifacts] root): before any suite or test is set
// up, NEMOKIT_ARTIFACTS_ROOT is set to a fresh folder under the temporary area, which every
// nemokit the test starts inherits. ctest runs each test in a process of its own, so each test
// has its own store; a test that names a store in a command's environment uses that one. The
// folder goes when every test of the process passed (NEMOKIT_KEEP_TEST_FOLDERS=1 keeps it).
// Linked into every test program (cmake/NemokitTesting.cmake).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

class OwnArtifactStore : public ::testing::Environment {
 public:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("nemokit-test-" + std::to_string(::getpid()) + "-artifacts");
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    ::setenv("NEMOKIT_ARTIFACTS_ROOT", root_.c_str(), 1);
  }
  void TearDown() override {
    const char* keep = std::getenv("NEMOKIT_KEEP_TEST_FOLDERS");
    if (!::testing::UnitTest::GetInstance()->Passed() || (keep && *keep && std::string(keep) != "0")) return;
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);  // best effort: a leftover costs disk, not correctness
  }

 private:
  std::filesystem::path root_;
};

// Registered before main runs; gtest sets up environments in the order they were added, and
// this one's order among them does not matter (none reads the store while setting up).
const auto* const kOwnArtifactStore = ::testing::AddGlobalTestEnvironment(new OwnArtifactStore);

}  // namespace
