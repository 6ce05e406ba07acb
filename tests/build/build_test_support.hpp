#pragma once
// Helpers for the build tests: run the real nemokit binary, make the Debian
// test base once per build folder, list a file tree for comparisons.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/nemokit_binary.hpp"
#include "support/squashfs_mount.hpp"

namespace buildtest {

namespace fs = std::filesystem;
using nemokit::test::nemokit_binary;
using nemokit::test::read_file;
using nemokit::test::write_file;

struct Result {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs argv with extra environment entries (K=V); output captured (tests/support/process.hpp).
Result run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}, const std::string& stdin_text = "");

// A fresh folder under the build tree for one test.
fs::path scratch_dir(const std::string& name);

// The test base (tests/build/make_test_base.sh): OUT/base.tar (docker save)
// and OUT/rootfs (the same tree), made once and reused by later runs.
fs::path test_base_dir();

// path -> "type mode uid:gid [link target | sha256 of contents]" for every
// entry under root (the root itself is "").
std::map<std::string, std::string> tree_listing(const fs::path& root);

// Mounts a squashfs read-only for the life of the object (needs root).
using nemokit::test::SquashfsMount;

}  // namespace buildtest
