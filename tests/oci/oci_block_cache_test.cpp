// The squashfs block cache: an image written with it is the same file, byte for byte, as one
// written without it, whether the cache was empty, full, damaged or for other settings; a warm
// cache serves every data block; the cap removes the packs unused for longest.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "nemokit/oci/block_cache.hpp"
#include "nemokit/oci/convert.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"

using nemokit::test::read_file;
using namespace ocitest;
namespace oci = nemokit::oci;

namespace {

// Real files (compressible) and 600 KiB of random bytes (blocks that do not shrink, which the
// cache must remember as such) in two layers.
fs::path make_layout(const fs::path& work) {
  std::mt19937 gen(7);
  std::string noise(600 * 1024, '\0');
  for (char& c : noise) c = char(gen());
  std::vector<LayerBlob> layers = {
      {tar_of_paths("/", {"usr/share/doc/bash", "usr/bin/ls", "usr/share/perl5/Debian"}), "gzip"},
      {make_tar({dir_entry("data"), file_entry("data/noise.bin", noise), file_entry("data/small", "tail of a fragment")}),
       "zstd"}};
  return write_oci_layout(work / "oci", layers, default_config(layers), "v1");
}

oci::ConvertResult convert(const fs::path& layout, const fs::path& out, const fs::path& cache_dir, int level = 3,
                           uint64_t cap = uint64_t(1) << 30) {
  oci::ConvertOptions o;
  o.handle_signals = false;
  o.squashfs.fixed_mtime = 1700000000;
  o.squashfs.level = level;
  o.squashfs.workers = 2;
  o.squashfs.block_cache_dir = cache_dir;
  o.squashfs.block_cache_max_bytes = cap;
  return oci::convert_image("oci:" + layout.string() + ":v1", out, o);
}

std::vector<fs::path> files_with(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().extension() == ext) out.push_back(e.path());
  return out;
}

}  // namespace

TEST(oci_block_cache, WarmCacheServesEveryBlockAndTheImageIsTheSameFile) {
  fs::path work = scratch_dir("block_cache_same");
  fs::path layout = make_layout(work);
  convert(layout, work / "plain.sqsh", "");
  const std::string plain = read_file(work / "plain.sqsh");

  auto cold = convert(layout, work / "cold.sqsh", work / "cache");
  EXPECT_EQ(cold.cached_blocks, 0u);
  EXPECT_GT(cold.compressed_blocks, 4u);  // 4 full noise blocks and the fragments
  EXPECT_EQ(read_file(work / "cold.sqsh"), plain);

  auto warm = convert(layout, work / "warm.sqsh", work / "cache");
  EXPECT_EQ(warm.compressed_blocks, 0u);
  EXPECT_EQ(warm.cached_blocks, cold.compressed_blocks);
  EXPECT_EQ(read_file(work / "warm.sqsh"), plain);
  // One pack per write that added blocks: the warm write added none.
  EXPECT_EQ(files_with(work / "cache", ".pack").size(), 1u);
  EXPECT_EQ(files_with(work / "cache", ".idx").size(), 1u);
}

TEST(oci_block_cache, OtherSettingsDoNotShareBlocks) {
  fs::path work = scratch_dir("block_cache_settings");
  fs::path layout = make_layout(work);
  convert(layout, work / "a.sqsh", work / "cache", 3);
  auto other = convert(layout, work / "b.sqsh", work / "cache", 9);
  EXPECT_EQ(other.cached_blocks, 0u);
  convert(layout, work / "plain9.sqsh", "", 9);
  EXPECT_EQ(read_file(work / "b.sqsh"), read_file(work / "plain9.sqsh"));
}

// A crash can leave an index shorter than written (never, with the atomic write, but a disk
// can) or a pack shorter than its index: such a pack is not used, and the image is still right.
TEST(oci_block_cache, DamagedPacksAndIndexesAreIgnored) {
  fs::path work = scratch_dir("block_cache_damaged");
  fs::path layout = make_layout(work);
  convert(layout, work / "plain.sqsh", "");
  convert(layout, work / "first.sqsh", work / "cache");
  auto idx = files_with(work / "cache", ".idx");
  auto pack = files_with(work / "cache", ".pack");
  ASSERT_EQ(idx.size(), 1u);
  ASSERT_EQ(pack.size(), 1u);

  fs::resize_file(pack[0], fs::file_size(pack[0]) - 1);
  auto r = convert(layout, work / "short_pack.sqsh", work / "cache");
  EXPECT_EQ(r.cached_blocks, 0u);
  EXPECT_EQ(read_file(work / "short_pack.sqsh"), read_file(work / "plain.sqsh"));

  for (auto& f : files_with(work / "cache", ".idx")) fs::resize_file(f, fs::file_size(f) - 5);
  r = convert(layout, work / "short_index.sqsh", work / "cache");
  EXPECT_EQ(read_file(work / "short_index.sqsh"), read_file(work / "plain.sqsh"));
}

// The cap: after a write, packs go oldest-unused first until the rest fit.
TEST(oci_block_cache, CapRemovesThePacksUnusedForLongest) {
  fs::path work = scratch_dir("block_cache_cap");
  fs::path layout = make_layout(work);
  convert(layout, work / "a.sqsh", work / "cache", 3);
  const uint64_t one_pack = fs::file_size(files_with(work / "cache", ".pack").at(0));
  // A second write with the same settings adds a small pack, under a cap below the first pack.
  std::vector<LayerBlob> other = {{make_tar({file_entry("x/other", std::string(300000, 'q'))}), "none"}};
  fs::path other_layout = write_oci_layout(work / "oci2", other, default_config(other), "v1");
  oci::ConvertOptions o;
  o.handle_signals = false;
  o.squashfs.block_cache_dir = work / "cache";
  o.squashfs.block_cache_max_bytes = one_pack / 2;
  oci::convert_image("oci:" + other_layout.string() + ":v1", work / "b.sqsh", o);
  // Over the cap: the older, larger pack went; the new one stays.
  auto packs = files_with(work / "cache", ".pack");
  ASSERT_EQ(packs.size(), 1u);
  EXPECT_LT(fs::file_size(packs[0]), one_pack);
  EXPECT_EQ(files_with(work / "cache", ".idx").size(), 1u);
}

TEST(oci_block_cache, KeysAreSha256OfTheBytes) {
  const std::string a = "abc";
  auto k = oci::BlockCache::key_of(a.data(), a.size());
  // FIPS 180-2's "abc" vector.
  EXPECT_EQ(k[0], 0xba);
  EXPECT_EQ(k[1], 0x78);
  EXPECT_EQ(k[31], 0xad);
}
