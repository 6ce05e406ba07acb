// Base layers as squashfs files in overlayfs' form (src/oci/layer_squashfs.cpp), read back through
// the kernel: whiteouts are 0:0 character devices, opaque folders carry the marker the builder's
// overlay reads, owners, modes, links and xattrs are the layer's. Then the real check: overlayfs
// stacking two such files shows exactly the tree the image converter flattens from the same
// layers, whiteouts and opaque folders included.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/layer_squashfs.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"

using namespace ocitest;
namespace oci = nemokit::oci;

#define REQUIRE_ROOT() \
  if (!running_as_root()) GTEST_SKIP() << "needs root to loop-mount squashfs and overlayfs"

namespace {

// The layer as a docker save archive's reader gives it: an uncompressed blob.
oci::Layer layer_of(const fs::path& dir, const std::string& name, const std::string& tar) {
  fs::path blob = dir / name;
  nemokit::test::write_file(blob, tar);
  oci::Layer l;
  l.blob = {blob, 0, tar.size(), name};
  l.diff_id = sha256(tar);
  return l;
}

oci::SquashfsStats write(const oci::Layer& l, const fs::path& dest, const std::string& marker = "trusted.overlay.opaque") {
  std::vector<std::string> warnings;
  oci::SquashfsStats s = oci::write_layer_squashfs(l, "layer " + l.blob.name, dest, oci::SquashfsOptions{}, marker, warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  return s;
}

const std::string kLower =
    make_tar({dir_entry("a"), file_entry("a/x", "x"), file_entry("a/y", "y"), dir_entry("b"), file_entry("b/p", "p"),
              dir_entry("b/sub"), file_entry("b/sub/deep", "deep"), file_entry("c", "c"), dir_entry("d"), file_entry("d/in", "in"),
              file_entry("e", "e"), symlink_entry("f", "a/y"), file_entry("g", "old g")});

std::string upper_tar() {
  TarEntry owned = file_entry("h/owned", "mine", 0640);
  owned.uid = 1234;
  owned.gid = 5678;
  owned.xattrs = {{"user.note", "kept"}};
  TarEntry forged = dir_entry("i");
  forged.xattrs = {{"trusted.overlay.opaque", "y"}, {"user.overlay.opaque", "y"}};
  return make_tar({dir_entry("b"), file_entry("b/q", "q"), file_entry("b/.wh..wh..opq", ""), file_entry(".wh.c", ""), dir_entry("a"), file_entry("a/.wh.x", ""),
                   file_entry("d", "now a file"), dir_entry("e"), file_entry("e/inside", "e"), file_entry("f", "no longer a link"),
                   symlink_entry("g", "a/y"), dir_entry("h"), owned, hardlink_entry("h/again", "h/owned"), forged,
                   file_entry("i/in", "i")});
}

}  // namespace

TEST(oci_layer_squashfs, WhiteoutsAndOpaqueFoldersInOverlayfsForm) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("layer-sqsh-form");
  oci::Layer upper = layer_of(work, "upper.tar", upper_tar());
  write(upper, work / "upper.sqsh");
  write(upper, work / "upper-userns.sqsh", "user.overlay.opaque");
  SquashfsMount m(work / "upper.sqsh");
  Tree got = scan(m.root());
  for (const char* hidden : {"c", "a/x"}) {
    EXPECT_EQ(got[hidden].type, 'c') << hidden;
    EXPECT_EQ(got[hidden].mode, 0u) << hidden;
    EXPECT_EQ(got[hidden].dev_major, 0u) << hidden;
    EXPECT_EQ(got[hidden].dev_minor, 0u) << hidden;
  }
  EXPECT_FALSE(got.count(".wh.c"));
  EXPECT_FALSE(got.count("b/.wh..wh..opq"));
  EXPECT_EQ(got["b"].xattrs, (std::map<std::string, std::string>{{"trusted.overlay.opaque", "y"}}));
  EXPECT_EQ(got["b/q"].type, 'f');
  // A layer's own overlay.* xattrs are not believed: the folder is not opaque.
  EXPECT_TRUE(got["i"].xattrs.empty());
  EXPECT_EQ(got["h/owned"].uid, 1234u);
  EXPECT_EQ(got["h/owned"].gid, 5678u);
  EXPECT_EQ(got["h/owned"].mode, 0640u);
  EXPECT_EQ(got["h/owned"].xattrs, (std::map<std::string, std::string>{{"user.note", "kept"}}));
  EXPECT_EQ(got["h/owned"].nlink, 2u);
  EXPECT_EQ(got["h/again"].ino, got["h/owned"].ino);
  EXPECT_EQ(got["g"].target, "a/y");
  SquashfsMount u(work / "upper-userns.sqsh");
  EXPECT_EQ(scan(u.root())["b"].xattrs, (std::map<std::string, std::string>{{"user.overlay.opaque", "y"}}));
}

TEST(oci_layer_squashfs, OverlayOfTheLayerFilesIsTheFlattenedImage) {
  REQUIRE_ROOT();
  fs::path work = scratch_dir("layer-sqsh-overlay");
  std::string upper_text = upper_tar();
  oci::Layer lower = layer_of(work, "lower.tar", kLower), upper = layer_of(work, "upper.tar", upper_text);
  write(lower, work / "lower.sqsh");
  write(upper, work / "upper.sqsh");
  std::vector<LayerBlob> layers = {{kLower, "none"}, {upper_text, "none"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  oci::ConvertOptions o;
  o.handle_signals = false;
  o.write_enroot_files = false;
  oci::convert_image("oci:" + layout.string(), work / "image.sqsh", o);

  SquashfsMount lo(work / "lower.sqsh"), up(work / "upper.sqsh"), image(work / "image.sqsh");
  fs::path merged = work / "merged";
  fs::create_directories(merged);
  std::string opts = "lowerdir=" + up.root().string() + ":" + lo.root().string() + ",redirect_dir=off,metacopy=off,xino=off";
  ASSERT_EQ(mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0) << std::strerror(errno);
  Tree through_overlay = scan(merged), flattened = scan(image.root());
  umount2(merged.c_str(), MNT_DETACH);
  // Overlayfs gives its own inode numbers and link counts; everything else must agree.
  for (Tree* t : {&through_overlay, &flattened})
    for (auto& [path, seen] : *t) seen.ino = seen.nlink = 0;
  // The converter keeps what a layer says of overlayfs' xattrs as plain xattrs of the image;
  // the layer file drops them (overlayfs would act on them).
  flattened["i"].xattrs.clear();
  through_overlay.erase("");
  flattened.erase("");
  EXPECT_EQ(through_overlay.size(), flattened.size());
  for (auto& [path, want] : flattened)
    EXPECT_EQ(through_overlay[path], want) << "\n flattened     " << describe(path, want) << "\n overlay shows "
                                           << describe(path, through_overlay[path]);
  EXPECT_FALSE(through_overlay.count("c"));
  EXPECT_FALSE(through_overlay.count("b/p"));
}

TEST(oci_layer_squashfs, BadEntriesAreNamedAndLeaveNoFile) {
  fs::path work = scratch_dir("layer-sqsh-bad");
  for (auto [tar, words] : {std::pair{make_tar({file_entry("a/.wh..wh.plnk", "")}), std::string("whiteout")},
                            std::pair{make_tar({file_entry("../escape", "x")}), std::string("../escape")},
                            std::pair{make_tar({file_entry("/abs", "x")}), std::string("/abs")}}) {
    oci::Layer l = layer_of(work, "bad.tar", tar);
    std::vector<std::string> warnings;
    try {
      oci::write_layer_squashfs(l, "layer bad.tar", work / "bad.sqsh", oci::SquashfsOptions{}, "trusted.overlay.opaque", warnings);
      ADD_FAILURE() << "accepted " << words;
    } catch (const oci::Error& e) {
      EXPECT_NE(std::string(e.what()).find("layer bad.tar"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(work / "bad.sqsh"));
  }
  // A blob whose bytes are not its diff_id's.
  oci::Layer l = layer_of(work, "lying.tar", kLower);
  l.diff_id = sha256("something else");
  std::vector<std::string> warnings;
  EXPECT_THROW(oci::write_layer_squashfs(l, "layer lying.tar", work / "lying.sqsh", oci::SquashfsOptions{}, "trusted.overlay.opaque",
                                         warnings),
               oci::Error);
  EXPECT_FALSE(fs::exists(work / "lying.sqsh"));
}
