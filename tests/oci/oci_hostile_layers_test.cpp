// Crafted layers beyond the escapes of oci_safety_test: symlink chains out of the root, device
// nodes, sizes the data does not hold, deep nesting, a decompression bomb and duplicate entries.
// Each is refused with a message naming the entry, or contained: converted into the image without
// touching anything outside it, in bounded memory. The result is read back with squashfs-tools.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

using namespace ocitest;
namespace oci = nemokit::oci;

namespace {

oci::ConvertOptions quiet_options() {
  oci::ConvertOptions o;
  o.handle_signals = false;
  return o;
}

struct Outcome {
  std::string error;  // empty when the conversion succeeded
  fs::path image;
};

// Converts `layers` (bottom first) into work/image.sqsh.
Outcome convert(const fs::path& work, const std::vector<LayerBlob>& layers) {
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  Outcome o{{}, work / "image.sqsh"};
  try {
    oci::convert_image("oci:" + layout.string(), o.image, quiet_options());
  } catch (const oci::Error& e) {
    o.error = e.what();
  }
  return o;
}

// unsquashfs -cat: the bytes of one file of the image.
std::string cat_in_image(const fs::path& image, const std::string& path) {
  auto r = nemokit::test::run({"unsquashfs", "-cat", image.string(), path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// unsquashfs -lls: one line per entry, "crw-r--r-- root/root 1,  3 2023-11-14 22:13 squashfs-root/dev/null".
std::string listing(const fs::path& image) {
  auto r = nemokit::test::run({"unsquashfs", "-lls", "-n", image.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// A ustar header for a regular file `name` that claims `size` bytes (octal, 11 digits).
std::string ustar_header(const std::string& name, uint64_t size) {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), name.size());
  std::snprintf(&h[100], 8, "%07o", 0644);
  std::snprintf(&h[108], 8, "%07o", 0);
  std::snprintf(&h[116], 8, "%07o", 0);
  std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(&h[136], 12, "%011o", 1700000000);
  h[156] = '0';
  std::memcpy(&h[257],
              "ustar\0"
              "00",
              8);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  return h;
}

}  // namespace

// a -> b -> c/../../.. : each link alone looks harmless, the chain leads out of the root.
TEST(oci_hostile, SymlinkChainOutOfTheRootIsRejected) {
  fs::path work = scratch_dir("chain");
  auto same = convert(work / "same", {{make_tar({dir_entry("c"), symlink_entry("b", "c/../../.."), symlink_entry("a", "b"),
                                                 file_entry("a/etc/cron.d/evil", "x")}),
                                       "gzip"}});
  EXPECT_NE(same.error.find("goes through the symlink"), std::string::npos) << same.error;
  EXPECT_FALSE(fs::exists(same.image));
  auto across = convert(work / "across", {{make_tar({symlink_entry("b", "../../../etc"), symlink_entry("a", "b")}), "gzip"},
                                          {make_tar({file_entry("a/passwd", "root::0:0")}), "gzip"}});
  EXPECT_NE(across.error.find("symlink 'a' would redirect"), std::string::npos) << across.error;
  EXPECT_FALSE(fs::exists(across.image));
}

// Device nodes are entries of the image, as in any base image's /dev: written into the squashfs
// with their numbers, never created on the host nor opened.
TEST(oci_hostile, DeviceNodesStayEntriesOfTheImage) {
  fs::path work = scratch_dir("devices");
  TarEntry mem{TarEntry::CharDev, "dev/mem"};
  mem.dev_major = 1, mem.dev_minor = 1, mem.mode = 0666;
  TarEntry disk{TarEntry::BlockDev, "dev/sda"};
  disk.dev_major = 8, disk.dev_minor = 0, disk.mode = 0666;
  auto o = convert(work, {{make_tar({dir_entry("dev"), mem, disk}), "gzip"}});
  ASSERT_EQ(o.error, "");
  const std::string ls = listing(o.image);
  EXPECT_NE(ls.find("crw-rw-rw- root/root             1,  1 2023-11-14 22:13 squashfs-root/dev/mem"), std::string::npos) << ls;
  EXPECT_NE(ls.find("brw-rw-rw- root/root             8,  0 2023-11-14 22:13 squashfs-root/dev/sda"), std::string::npos) << ls;
  for (auto it = fs::recursive_directory_iterator(work); it != fs::recursive_directory_iterator(); ++it)
    EXPECT_FALSE(it->is_character_file() || it->is_block_file()) << it->path();
}

// A header that claims 8 GiB over a few bytes of data: the layer and its blob are named with the
// cause, nothing is written.
TEST(oci_hostile, SizeTheDataDoesNotHoldIsNamed) {
  fs::path work = scratch_dir("huge");
  std::string tar = ustar_header("huge.bin", (8ull << 30) - 1) + std::string(4096, 'x');
  auto o = convert(work, {{tar, "gzip"}});
  EXPECT_NE(o.error.find("layer 1/1"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("Truncated tar archive"), std::string::npos) << o.error;
  EXPECT_FALSE(fs::exists(o.image));
  EXPECT_EQ(o.error.find("std::"), std::string::npos) << o.error;
}

// 3,000 folders deep (a 6,000-character path, past PATH_MAX): converted without recursion
// trouble, the file at the bottom readable.
TEST(oci_hostile, DeepNestingConverts) {
  fs::path work = scratch_dir("deep");
  std::string deep;
  for (int i = 0; i < 3000; ++i) deep += "d/";
  auto o = convert(work, {{make_tar({file_entry(deep + "bottom", "deep")}), "zstd"}});
  ASSERT_EQ(o.error, "");
  EXPECT_NE(listing(o.image).find(deep + "bottom"), std::string::npos);
}

// 1 GiB of zeros in a 1 MB gzip blob (concatenated gzip members of 1 MiB of zeros each): streamed
// through in bounded memory (the converting child's peak resident size stays far below the data),
// and the image holds it as sparse blocks.
TEST(oci_hostile, DecompressionBombIsStreamedInBoundedMemory) {
  fs::path work = scratch_dir("bomb");
  const uint64_t size = 1ull << 30;
  const std::string header = ustar_header("zeros", size), mib(1 << 20, '\0'), end(1024, '\0');
  const std::string zeros_gz = compress(mib, "gzip");
  std::string blob = compress(header, "gzip");
  nemokit::rt::Sha256 tar_hash;
  tar_hash.update(header);
  for (uint64_t done = 0; done < size; done += mib.size()) blob += zeros_gz, tar_hash.update(mib);
  blob += compress(end, "gzip");
  tar_hash.update(end);
  ASSERT_LT(blob.size(), 4u << 20);
  // The layout writer compresses the tar it is given: hand it the gzip bytes as they are
  // ("none"; the reader finds the gzip itself), and the config the digest of the 1 GiB tar.
  auto config = default_config({});
  config["rootfs"]["diff_ids"] = {tar_hash.finish_digest()};
  fs::path layout = write_oci_layout(work / "oci", {{blob, "none"}}, config);
  pid_t child = ::fork();
  if (child == 0) {
    try {
      oci::convert_image("oci:" + layout.string(), work / "image.sqsh", quiet_options());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  struct rusage ru {};
  ASSERT_EQ(::wait4(child, &status, 0, &ru), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // AddressSanitizer keeps freed blocks in a quarantine of 256 MiB by default and adds its shadow
  // memory, so a sanitized build (scripts/test-sanitized.sh) gets that much more.
#if defined(__SANITIZE_ADDRESS__)
  const long limit_kib = 768 * 1024;
#else
  const long limit_kib = 256 * 1024;
#endif
  EXPECT_LT(ru.ru_maxrss, limit_kib) << "peak resident KiB while converting 1 GiB of zeros";
  EXPECT_LT(fs::file_size(work / "image.sqsh"), 1u << 20);
  EXPECT_NE(listing(work / "image.sqsh").find(std::to_string(size)), std::string::npos);
}

// The same path twice in one layer: the later entry wins, as tar extraction has it, and the image
// holds one entry. A file replacing a folder of the same layer that already has entries in it is
// refused, naming the entry: which of them the image should hold is not the layer's to decide.
TEST(oci_hostile, DuplicateEntriesTheLaterOneWinsOrAreRefused) {
  fs::path work = scratch_dir("dup");
  auto o = convert(work / "files", {{make_tar({file_entry("a", "first"), file_entry("a", "second")}), "gzip"}});
  ASSERT_EQ(o.error, "");
  EXPECT_EQ(cat_in_image(o.image, "a"), "second");
  const std::string ls = listing(o.image);
  EXPECT_EQ(ls.find("squashfs-root/a\n"), ls.rfind("squashfs-root/a\n")) << ls;
  auto dir = convert(work / "dir", {{make_tar({dir_entry("d"), file_entry("d/x", "x"), file_entry("d", "now a file")}), "gzip"}});
  EXPECT_NE(dir.error.find("entry 'd' replaces a non-empty directory of the same layer"), std::string::npos) << dir.error;
  EXPECT_FALSE(fs::exists(dir.image));
}
