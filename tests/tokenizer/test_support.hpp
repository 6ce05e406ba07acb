#pragma once
// Shared helpers for the tokenizer tests: fixture paths and the fixture file formats.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.hpp"

namespace tokenizer_test {

using nemokit::test::read_file;
using nemokit::test::write_file;

// The fixtures were written by tests/tokenizer/make_fixtures.py (Hugging Face `tokenizers` 0.23
// on KJV + fortunes text); they are committed so these tests need no Python.
inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(NEMOKIT_SOURCE_DIR) / "tests/tokenizer/fixtures" / name;
}

// Lines split on '\n' only (the fixtures hold \r, U+2028 and friends inside lines on purpose).
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

inline std::vector<std::vector<int32_t>> read_ids(const std::filesystem::path& p) {
  std::vector<std::vector<int32_t>> rows;
  for (const auto& line : split_lines(read_file(p))) {
    std::istringstream words(line);
    std::vector<int32_t> row;
    for (int32_t id; words >> id;) row.push_back(id);
    rows.push_back(std::move(row));
  }
  return rows;
}

inline std::vector<std::string> sample_lines() { return split_lines(read_file(fixture("sample.txt"))); }

// A fresh folder under the build tree, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(NEMOKIT_BINARY_DIR) / "tests/tokenizer/tmp" /
            (std::string(info->test_suite_name()) + "." + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace tokenizer_test
