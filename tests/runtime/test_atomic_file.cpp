// Files and folders that appear all at once: contents and modes as asked, older versions
// replaced whole, no temporaries left behind, and failures that leave the old file and name
// the path.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "nemokit/runtime/atomic_file.hpp"
#include "support/files.hpp"
#include "scratch_path.hpp"

using nemokit::test::read_file;

using namespace nemokit::rt;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return nemokit::rt::testing::fresh_dir("runtime_atomic_file_test", name); }


size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

}  // namespace

TEST(runtime_atomic_file, WritesReplacesAndLeavesNoTemporary) {
  const fs::path dir = fresh_dir("write");
  const fs::path file = dir / "sub" / "folder" / "a.json";  // parents are created
  write_file_atomic(file, "first");
  EXPECT_EQ(read_file(file), "first");
  EXPECT_EQ(mode_of(file), 0644u);
  const std::string big(3 << 20, 'x');
  write_file_atomic(file, big);
  EXPECT_EQ(read_file(file), big);
  write_file_atomic(file, "");
  EXPECT_EQ(read_file(file), "");
  EXPECT_EQ(entries(file.parent_path()), 1u);
}

TEST(runtime_atomic_file, ModeIsExactWhateverTheUmask) {
  const fs::path dir = fresh_dir("mode");
  const mode_t old = ::umask(077);
  write_file_atomic(dir / "script.sh", "#!/bin/sh\n", 0755);
  write_file_atomic(dir / "secrets.env", "TOKEN=x\n", 0600);
  ::umask(old);
  EXPECT_EQ(mode_of(dir / "script.sh"), 0755u);
  EXPECT_EQ(mode_of(dir / "secrets.env"), 0600u);
}

TEST(runtime_atomic_file, FailureKeepsTheOldFileAndNamesThePath) {
  const fs::path dir = fresh_dir("fail");
  const fs::path target = dir / "taken";
  fs::create_directories(target / "inside");  // a non-empty folder cannot be renamed over
  try {
    write_file_atomic(target, "new");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(target / "inside"));
  EXPECT_EQ(entries(dir), 1u) << "a temporary was left in " << dir;
}

TEST(runtime_atomic_file, TempFileCommit) {
  const fs::path dir = fresh_dir("commit");
  const fs::path final_path = dir / "data.bin";
  const fs::path tmp = temp_path_beside(final_path);
  EXPECT_EQ(tmp.parent_path(), dir);
  EXPECT_NE(tmp, temp_path_beside(final_path));
  std::ofstream(tmp, std::ios::binary) << "payload";
  commit_temp_file(tmp, final_path);
  EXPECT_EQ(read_file(final_path), "payload");
  EXPECT_FALSE(fs::exists(tmp));
  fsync_path(final_path);
  fsync_path(dir);
  EXPECT_THROW(fsync_path(dir / "missing"), std::runtime_error);
}

TEST(runtime_atomic_file, AtomicOutputAppearsOnlyOnCommit) {
  const fs::path dir = fresh_dir("output");
  const fs::path dest = dir / "image.sqsh";
  write_file_atomic(dest, "old");
  {
    AtomicOutput out(dest);
    EXPECT_EQ(out.temp_path().parent_path(), dir);
    std::ofstream(out.temp_path(), std::ios::binary) << "abandoned";
  }
  EXPECT_EQ(read_file(dest), "old");
  EXPECT_EQ(entries(dir), 1u);
  {
    AtomicOutput out(dest);
    std::ofstream(out.temp_path(), std::ios::binary) << "new";
    out.commit();
  }
  EXPECT_EQ(read_file(dest), "new");
  EXPECT_EQ(mode_of(dest), 0644u);
  EXPECT_EQ(entries(dir), 1u);
  EXPECT_THROW(AtomicOutput(dir / "no" / "such" / "folder"), std::runtime_error);
}

// What a SIGKILLed writer leaves (scripts/crash_consistency.sh): the next AtomicOutput of the same
// file removes it, but not a temporary a live process is writing, nor another host's.
TEST(runtime_atomic_file, AtomicOutputRemovesTemporariesOfKilledWriters) {
  const fs::path dir = fresh_dir("partials");
  const fs::path dest = dir / "image.sqsh";
  std::string own;
  {
    AtomicOutput probe(dest);
    own = probe.temp_path().filename().string();  // .image.sqsh.partial-HOST-PID-XXXXXX
  }
  const std::string host_part = own.substr(0, own.find('-', own.find(".partial-") + 9) + 1);
  const fs::path dead = dir / (host_part + "99999999-abcdef");  // above any pid_max
  const fs::path live = dir / (host_part + std::to_string(::getppid()) + "-abcdef");
  const fs::path other_host = dir / ".image.sqsh.partial-elsewhere-99999999-abcdef";
  for (const auto& p : {dead, live, other_host}) std::ofstream(p) << "partial";
  {
    AtomicOutput out(dest);
    std::ofstream(out.temp_path(), std::ios::binary) << "new";
    out.commit();
  }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other_host));
  EXPECT_EQ(read_file(dest), "new");
}

TEST(runtime_atomic_file, ReplaceDirSwapsWholeFolders) {
  const fs::path dir = fresh_dir("dirs");
  const fs::path final_dir = dir / "ckpt", tmp = dir / "ckpt.tmp";
  fs::create_directories(tmp);
  write_file_atomic(tmp / "a", "1");
  replace_dir_atomic(tmp, final_dir);
  EXPECT_EQ(read_file(final_dir / "a"), "1");
  fs::create_directories(tmp);
  write_file_atomic(tmp / "b", "2");
  replace_dir_atomic(tmp, final_dir);
  EXPECT_FALSE(fs::exists(final_dir / "a"));
  EXPECT_EQ(read_file(final_dir / "b"), "2");
  EXPECT_FALSE(fs::exists(tmp));
}
