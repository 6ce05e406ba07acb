// A test's work folder is removed when the test ends and has passed, and kept for a look when it
// failed. The build tests make several 600 MB caches (an unpacked Debian base, its layer blob and
// a squashfs each), and a suite that kept them all outgrew a CI machine's disk.
// NEMOKIT_KEEP_TEST_FOLDERS=1 keeps every folder.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace nemokit::test {

class RemoveWhenPassed : public ::testing::EmptyTestEventListener {
public:
  static RemoveWhenPassed& instance() {
    // Appended to gtest's listeners once; gtest owns and deletes it.
    static RemoveWhenPassed* self = [] {
      auto* l = new RemoveWhenPassed;
      ::testing::UnitTest::GetInstance()->listeners().Append(l);
      return l;
    }();
    return *self;
  }

  // A folder made outside a test (SetUpTestSuite) serves the whole suite and goes when the suite
  // passed; one made inside a test goes when that test passed.
  void add(const std::filesystem::path& p) {
    std::lock_guard<std::mutex> lock(mu_);
    (::testing::UnitTest::GetInstance()->current_test_info() ? test_folders_ : suite_folders_).push_back(p);
  }

  void OnTestEnd(const ::testing::TestInfo& info) override { remove(test_folders_, info.result()->Passed()); }
  void OnTestSuiteEnd(const ::testing::TestSuite& suite) override { remove(suite_folders_, suite.Passed()); }

private:
  void remove(std::vector<std::filesystem::path>& list, bool passed) {
    std::vector<std::filesystem::path> folders;
    {
      std::lock_guard<std::mutex> lock(mu_);
      folders.swap(list);
    }
    const char* keep = std::getenv("NEMOKIT_KEEP_TEST_FOLDERS");
    if (!passed || (keep && *keep && std::string(keep) != "0")) return;
    for (const auto& p : folders) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);  // best effort: a leftover costs disk, not correctness
    }
  }

  std::mutex mu_;
  std::vector<std::filesystem::path> test_folders_, suite_folders_;
};

// Removes `p` when the running test passes.
inline void remove_when_passed(const std::filesystem::path& p) { RemoveWhenPassed::instance().add(p); }

}  // namespace nemokit::test
