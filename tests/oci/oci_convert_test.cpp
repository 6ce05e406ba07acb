// End-to-end conversions read back through the kernel's squashfs driver: every
// path, type, mode, owner, mtime, link target, xattr and content hash must be
// what the layers say after flattening.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"

using nemokit::test::read_file;

using namespace ocitest;
namespace oci = nemokit::oci;

#define REQUIRE_ROOT() \
  if (!running_as_root()) GTEST_SKIP() << "needs root to loop-mount squashfs (mount -t squashfs)"

namespace {

oci::ConvertOptions quiet_options() {
  oci::ConvertOptions o;
  o.handle_signals = false;
  return o;
}

void expect_trees_equal(const Tree& expected, const Tree& got) {
  for (auto& [path, want] : expected) {
    auto it = got.find(path);
    if (it == got.end()) {
      ADD_FAILURE() << "missing from image: " << describe(path, want);
      continue;
    }
    EXPECT_EQ(it->second, want) << "\n want " << describe(path, want) << "\n got  " << describe(path, it->second);
  }
  for (auto& [path, s] : got)
    if (!expected.count(path)) ADD_FAILURE() << "unexpected in image: " << describe(path, s);
}

}  // namespace

// Three layers of real files (gzip, zstd, uncompressed): the image must hold
// exactly those files with their metadata, plus enroot's config files.
TEST(oci_convert, RealFilesThreeLayersMatchTheSourceTree) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("realfiles");
  std::vector<std::string> lower = {"usr/share/doc/bash", "usr/share/doc/coreutils", "usr/bin/ls", "usr/bin/cat"};
  std::vector<std::string> middle = {"usr/share/perl5", "usr/lib/os-release"};
  std::vector<std::string> upper = {"etc/passwd", "etc/group", "etc/ssl"};
  std::vector<LayerBlob> layers = {
      {tar_of_paths("/", lower), "gzip"}, {tar_of_paths("/", middle), "zstd"}, {tar_of_paths("/", upper), "none"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers), "v1");
  fs::path out = work / "image.sqsh";
  auto result = oci::convert_image("oci:" + layout.string() + ":v1", out, quiet_options());
  EXPECT_EQ(result.layers, 3u);

  SquashfsMount m(out);
  std::vector<std::string> all = lower;
  all.insert(all.end(), middle.begin(), middle.end());
  all.insert(all.end(), upper.begin(), upper.end());
  Tree expected = scan("/", all);
  Tree got = scan(m.root(), all);
  expect_trees_equal(expected, got);
  // Parent folders that tar recorded keep their metadata too.
  EXPECT_EQ(scan(m.root(), {"usr/share/doc/bash"})["usr/share/doc/bash"],
            scan("/", {"usr/share/doc/bash"})["usr/share/doc/bash"]);
}

TEST(oci_convert, EnrootFilesAreWhereEnrootReadsThem) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("enroot");
  std::vector<LayerBlob> layers = {
      {make_tar({dir_entry("bin"), file_entry("bin/sh", "#!fake", 0755), file_entry("etc/rc.local", "old")}), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path out = work / "image.sqsh";
  auto result = oci::convert_image("oci:" + layout.string(), out, quiet_options());
  EXPECT_TRUE(result.warnings.empty());
  SquashfsMount m(out);
  EXPECT_EQ(read_file(m.root() / "etc/environment"), "PATH=/usr/bin:/bin\nLANG=C.UTF-8\n");
  EXPECT_EQ(read_file(m.root() / "etc/fstab"), "${ENROOT_ROOTFS}/data /data none x-create=dir,bind,rw,nosuid,nodev\n");
  std::string rc = read_file(m.root() / "etc/rc");
  EXPECT_NE(rc.find("exec '/bin/echo' 'it'\\''s' 'hello world'"), std::string::npos) << rc;
  EXPECT_NE(read_file(m.root() / "etc/rc.local").find("sourced by /etc/rc"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(m.root() / "work/dir"));  // WorkingDir is created as enroot does
  // The script is valid sh.
  EXPECT_EQ(std::system(("sh -n '" + (m.root() / "etc/rc").string() + "'").c_str()), 0);
}

TEST(oci_convert, MissingShellIsReported) {
  fs::path work = scratch_dir("nosh");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("hello", "hi")}), "none"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  auto result = oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("/bin/sh"), std::string::npos);
}

// Hand-made layers with every whiteout and replacement case.
TEST(oci_convert, WhiteoutsOpaqueFoldersAndReplacements) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("whiteouts");
  std::string lower =
      make_tar({dir_entry("a"), file_entry("a/x", "x"), file_entry("a/y", "y"), dir_entry("b"), file_entry("b/p", "p"),
                dir_entry("b/sub"), file_entry("b/sub/deep", "deep"), file_entry("c", "c"), dir_entry("d"),
                file_entry("d/in", "in"), file_entry("e", "e"), symlink_entry("f", "a/y"), file_entry("g", "old g")});
  std::string upper = make_tar({file_entry("b/q", "q"), file_entry("b/.wh..wh..opq", ""),  // opaque after a sibling
                                file_entry(".wh.c", ""), file_entry("a/.wh.x", ""), file_entry("d", "now a file"), dir_entry("e"),
                                file_entry("e/inside", "e"), file_entry("f", "no longer a link"), symlink_entry("g", "a/y")});
  std::vector<LayerBlob> layers = {{lower, "gzip"}, {upper, "zstd"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path out = work / "image.sqsh";
  oci::ConvertOptions o = quiet_options();
  o.write_enroot_files = false;
  oci::convert_image("oci:" + layout.string(), out, o);

  SquashfsMount m(out);
  Tree got = scan(m.root());
  std::vector<std::string> want = {"a", "a/y", "b", "b/q", "d", "e", "e/inside", "f", "g"};
  std::vector<std::string> paths;
  for (auto& [p, _] : got) paths.push_back(p);
  EXPECT_EQ(paths, want);
  EXPECT_EQ(got["d"].type, 'f');
  EXPECT_EQ(got["e"].type, 'd');
  EXPECT_EQ(got["f"].type, 'f');
  EXPECT_EQ(got["g"].type, 'l');
  EXPECT_EQ(got["g"].target, "a/y");
}

TEST(oci_convert, SpecialFilesModesOwnersXattrsAndHardLinks) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("special");
  TarEntry suid = file_entry("bin/su", "su", 04755);
  TarEntry sgid = file_entry("bin/wall", "wall", 02755);
  TarEntry tmp = dir_entry("tmp", 01777);
  TarEntry owned = file_entry("home/user/notes", "n", 0600);
  owned.uid = 1234;
  owned.gid = 5678;
  owned.mtime = 1234567890;
  TarEntry cap = file_entry("bin/ping", "ping", 0755);
  // A real security.capability value (cap_net_raw+ep, VFS_CAP_REVISION_2).
  cap.xattrs = {{"security.capability",
                 std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20)},
                {"user.origin", "test"}};
  TarEntry fifo;
  fifo.kind = TarEntry::Fifo;
  fifo.path = "run/pipe";
  TarEntry null_dev;
  null_dev.kind = TarEntry::CharDev;
  null_dev.path = "dev/null";
  null_dev.mode = 0666;
  null_dev.dev_major = 1;
  null_dev.dev_minor = 3;
  TarEntry disk;
  disk.kind = TarEntry::BlockDev;
  disk.path = "dev/sdq";
  disk.dev_major = 65;
  disk.dev_minor = 288;  // needs the split minor encoding
  std::string lower = make_tar({file_entry("lib/libc", "libc data"), file_entry("lib/shared", "shared data")});
  std::string upper =
      make_tar({dir_entry("bin"), suid, sgid, tmp, owned, cap, fifo, null_dev, disk, file_entry("bin/python3.11", "py"),
                hardlink_entry("bin/python3", "bin/python3.11"), hardlink_entry("bin/libc-link", "lib/libc")});
  std::vector<LayerBlob> layers = {{lower, "none"}, {upper, "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path out = work / "image.sqsh";
  oci::ConvertOptions o = quiet_options();
  o.write_enroot_files = false;
  oci::convert_image("oci:" + layout.string(), out, o);

  SquashfsMount m(out);
  Tree got = scan(m.root());
  EXPECT_EQ(got["bin/su"].mode, 04755u);
  EXPECT_EQ(got["bin/wall"].mode, 02755u);
  EXPECT_EQ(got["tmp"].mode, 01777u);
  EXPECT_EQ(got["home/user/notes"].uid, 1234u);
  EXPECT_EQ(got["home/user/notes"].gid, 5678u);
  EXPECT_EQ(got["home/user/notes"].mtime, 1234567890);
  std::map<std::string, std::string> want_xattrs(cap.xattrs.begin(), cap.xattrs.end());
  EXPECT_EQ(got["bin/ping"].xattrs, want_xattrs);
  EXPECT_EQ(got["run/pipe"].type, 'p');
  EXPECT_EQ(got["dev/null"].type, 'c');
  EXPECT_EQ(got["dev/null"].dev_major, 1u);
  EXPECT_EQ(got["dev/null"].dev_minor, 3u);
  EXPECT_EQ(got["dev/sdq"].type, 'b');
  EXPECT_EQ(got["dev/sdq"].dev_major, 65u);
  EXPECT_EQ(got["dev/sdq"].dev_minor, 288u);
  EXPECT_EQ(got["bin/python3"].nlink, 2u);
  EXPECT_EQ(got["bin/python3"].content_hash, sha256("py"));
  struct stat a, b;
  ASSERT_EQ(::lstat((m.root() / "bin/python3").c_str(), &a), 0);
  ASSERT_EQ(::lstat((m.root() / "bin/python3.11").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  // A link to a file of the layer below.
  EXPECT_EQ(got["bin/libc-link"].content_hash, sha256("libc data"));
  EXPECT_EQ(got["lib/libc"].nlink, 2u);
  // getcap-style check: the capability xattr survived byte for byte.
  EXPECT_EQ(got["bin/ping"].xattrs["security.capability"].size(), 20u);
}

TEST(oci_convert, FixedMtimeAndCompressorOptions) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("mtime");
  std::vector<LayerBlob> layers = {{tar_of_paths("/", {"usr/share/doc/bash"}), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  for (std::string comp : {"gzip", "xz", "lz4", "zstd"}) {
    oci::ConvertOptions o = quiet_options();
    o.squashfs.compressor = comp;
    o.squashfs.block_size = 65536;
    o.squashfs.fixed_mtime = 1600000000;
    if (comp == "zstd") o.squashfs.level = 19;
    fs::path out = work / (comp + ".sqsh");
    oci::convert_image("oci:" + layout.string(), out, o);
    SquashfsMount m(out);
    Tree got = scan(m.root());
    Tree want = scan("/", {"usr/share/doc/bash"});
    for (auto& [path, s] : got) EXPECT_EQ(s.mtime, 1600000000) << comp << " " << path;
    for (auto& [path, s] : want) EXPECT_EQ(got[path].content_hash, s.content_hash) << comp << " " << path;
    std::string info = "unsquashfs -s '" + out.string() + "' | grep -q 'Compression " + comp + "'";
    EXPECT_EQ(std::system(info.c_str()), 0) << comp;
  }
}

// GNU tar's sparse entries: the holes come back as zeros, the size is exact.
TEST(oci_convert, SparseFilesKeepTheirHolesAsZeros) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("sparse");
  fs::path src = work / "src";
  fs::create_directories(src);
  {
    std::ofstream f(src / "disk.img", std::ios::binary);
    f.seekp(3 << 20);
    f << "middle";
    f.seekp((9 << 20) - 3);
    f << "end";
  }
  std::string cmd = "tar -C '" + src.string() + "' --sparse -cf '" + (work / "layer.tar").string() + "' disk.img";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::vector<LayerBlob> layers = {{read_file(work / "layer.tar"), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  oci::ConvertOptions o = quiet_options();
  o.write_enroot_files = false;
  oci::convert_image("oci:" + layout.string(), work / "image.sqsh", o);
  SquashfsMount m(work / "image.sqsh");
  EXPECT_EQ(fs::file_size(m.root() / "disk.img"), size_t(9 << 20));
  EXPECT_EQ(scan(m.root())["disk.img"].content_hash, scan(src)["disk.img"].content_hash);
}
