// oci::unpack_squashfs (what rootless `nemokit exec` runs from where FUSE is not usable): a
// tree made by hand, packed by squashfs-tools' mksquashfs (the peer), unpacked again must be the
// same tree: types, modes (set-uid too), owners, contents (a large sparse file among them),
// symlink targets, hard links as one inode, a fifo, a device, user.* xattrs and mtimes. Runs as
// root (it gives files other owners and makes a device); skipped otherwise.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "nemokit/oci/error.hpp"
#include "nemokit/oci/squashfs_unpack.hpp"
#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// path -> what a reader of the tree sees, times included.
std::map<std::string, std::string> listing(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    struct stat st;
    EXPECT_EQ(lstat(it->path().c_str(), &st), 0);
    std::ostringstream s;
    s << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid << " mtime " << st.st_mtime;
    if (S_ISREG(st.st_mode)) s << " size " << st.st_size << " " << std::hash<std::string>()(read(it->path()));
    if (S_ISLNK(st.st_mode)) s << " -> " << fs::read_symlink(it->path()).string();
    if (S_ISCHR(st.st_mode)) s << " dev " << major(st.st_rdev) << "," << minor(st.st_rdev);
    char v[64];
    ssize_t n = lgetxattr(it->path().c_str(), "user.note", v, sizeof v);
    if (n > 0) s << " user.note=" << std::string(v, size_t(n));
    out[it->path().lexically_relative(root).string()] = s.str();
  }
  return out;
}

class Unpack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the tree has other owners and a device";
    if (nemokit::test::run({"sh", "-c", "command -v mksquashfs"}).exit_code != 0)
      GTEST_SKIP() << "mksquashfs (squashfs-tools) is not installed";
    char tmpl[] = "/tmp/nemokit-unpack-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(Unpack, GivesBackTheTreeMksquashfsPacked) {
  fs::path src = dir_ / "src";
  fs::create_directories(src / "etc" / "private");
  write(src / "etc" / "hello", "hello\n");
  write(src / "etc" / "empty", "");
  fs::create_directories(src / "opt");
  // Several blocks with a hole between (sparse in the image), then a fragment-sized tail.
  {
    std::string big(3 << 20, '\0');
    for (size_t i = 0; i < 200000; ++i) big[i] = char('a' + i % 26);
    for (size_t i = big.size() - 5000; i < big.size(); ++i) big[i] = char('0' + i % 10);
    write(src / "opt" / "big", big);
  }
  write(src / "opt" / "owned", "owned by 1234\n");
  ASSERT_EQ(chown((src / "opt" / "owned").c_str(), 1234, 2345), 0);
  ASSERT_EQ(chown((src / "etc" / "private").c_str(), 1234, 1234), 0);
  ASSERT_EQ(chmod((src / "etc" / "private").c_str(), 02750), 0);
  write(src / "opt" / "tool", "#!/bin/sh\n");
  ASSERT_EQ(chmod((src / "opt" / "tool").c_str(), 04755), 0);
  ASSERT_EQ(link((src / "etc" / "hello").c_str(), (src / "opt" / "hello-link").c_str()), 0);
  fs::create_symlink("../etc/hello", src / "opt" / "hello-symlink");
  ASSERT_EQ(mkfifo((src / "opt" / "fifo").c_str(), 0620), 0);
  ASSERT_EQ(mknod((src / "opt" / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(lsetxattr((src / "etc" / "hello").c_str(), "user.note", "kept", 4, 0), 0);
  // Times last: folders' times change as their entries are made.
  ASSERT_EQ(nemokit::test::run({"find", src.string(), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"}).exit_code, 0);

  fs::path image = dir_ / "image.sqsh";
  auto r =
      nemokit::test::run({"mksquashfs", src.string(), image.string(), "-noappend", "-no-progress", "-quiet", "-comp", "zstd"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  fs::path dest = dir_ / "dest";
  fs::create_directory(dest);
  auto result = nemokit::oci::unpack_squashfs(image, dest);
  EXPECT_EQ(result.owners_kept, 0u);
  EXPECT_EQ(result.skipped, 0u);
  EXPECT_EQ(result.bytes, uint64_t(3 << 20) + 6 + 14 + 10);  // hello once: its hard link is no copy

  auto want = listing(src), got = listing(dest);
  EXPECT_EQ(want.size(), got.size());
  for (auto& [path, what] : want) EXPECT_EQ(got[path], what) << path;
  struct stat a, b;
  ASSERT_EQ(lstat((dest / "etc" / "hello").c_str(), &a), 0);
  ASSERT_EQ(lstat((dest / "opt" / "hello-link").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  ASSERT_EQ(lstat(dest.c_str(), &a), 0);  // the root takes the image root's mode and time
  EXPECT_EQ(a.st_mtime, 1700000000);
}

TEST_F(Unpack, ABrokenImageNamesTheFile) {
  fs::path image = dir_ / "broken.sqsh";
  write(image, std::string(8192, 'x'));
  fs::create_directory(dir_ / "dest");
  try {
    nemokit::oci::unpack_squashfs(image, dir_ / "dest");
    FAIL() << "a file that is no squashfs unpacked";
  } catch (const nemokit::oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find(image.string()), std::string::npos) << e.what();
  }
}

}  // namespace
