// Unit checks of the pieces: entry paths, the flattening rules of the merged
// tree, and the files enroot reads.
#include <gtest/gtest.h>

#include "nemokit/oci/enroot_config.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/merged_tree.hpp"

using namespace nemokit::oci;

TEST(oci_paths, SplitNormalizesAndRejects) {
  EXPECT_EQ(split_entry_path("./a//b/./c/", "t"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(split_entry_path("./", "t").empty());
  EXPECT_THROW(split_entry_path("/etc/passwd", "t"), Error);
  EXPECT_THROW(split_entry_path("a/../../etc", "t"), Error);
  EXPECT_THROW(split_entry_path("..", "t"), Error);
}

namespace {
EntrySpec reg(std::string path) {
  EntrySpec e;
  e.path = std::move(path);
  e.type = NodeType::Regular;
  return e;
}
EntrySpec dir(std::string path, uint32_t mode = 0755) {
  EntrySpec e;
  e.path = std::move(path);
  e.type = NodeType::Directory;
  e.meta.mode = mode;
  return e;
}
EntrySpec sym(std::string path, std::string target) {
  EntrySpec e;
  e.path = std::move(path);
  e.type = NodeType::Symlink;
  e.symlink_target = std::move(target);
  return e;
}
const Node* find(const MergedTree& t, const std::string& path) {
  const Node* n = &t.root();
  for (auto& part : split_entry_path(path, "t")) {
    auto it = n->children.find(part);
    if (it == n->children.end() || it->second->type == NodeType::Whiteout) return nullptr;
    n = it->second.get();
  }
  return n;
}
}  // namespace

TEST(oci_tree, UpperEntriesHideLowerOnes) {
  MergedTree t;
  ASSERT_NE(t.place(reg("etc/hosts"), 1, "top"), nullptr);
  EXPECT_EQ(t.place(reg("etc/hosts"), 2, "low"), nullptr);  // replaced above: content never needed
  ASSERT_NE(t.place(reg("etc/passwd"), 2, "low"), nullptr);
  EXPECT_TRUE(find(t, "etc/hosts") && find(t, "etc/passwd"));
}

TEST(oci_tree, DirectoryOverDirectoryMergesAndTakesUpperMetadata) {
  MergedTree t;
  t.place(dir("opt", 0700), 1, "top");
  t.place(dir("opt", 0755), 2, "low");
  t.place(reg("opt/tool"), 2, "low");
  ASSERT_NE(find(t, "opt/tool"), nullptr);
  EXPECT_EQ(find(t, "opt")->meta.mode, 0700u);
}

TEST(oci_tree, ImplicitParentTakesMetadataFromBelow) {
  MergedTree t;
  t.place(reg("usr/bin/x"), 1, "top");  // no entry for usr/ or usr/bin/ in this layer
  t.place(dir("usr/bin", 0711), 2, "low");
  EXPECT_EQ(find(t, "usr/bin")->meta.mode, 0711u);
}

TEST(oci_tree, NonDirectoryReplacesDirectoryAndTheReverse) {
  MergedTree t;
  t.place(reg("a"), 1, "top");  // file over a lower directory
  t.place(dir("b"), 1, "top");  // directory over a lower file
  EXPECT_EQ(t.place(dir("a"), 2, "low"), nullptr);
  EXPECT_EQ(t.place(reg("a/inner"), 2, "low"), nullptr);
  EXPECT_EQ(t.place(reg("b"), 2, "low"), nullptr);
  EXPECT_EQ(find(t, "a")->type, NodeType::Regular);
  EXPECT_EQ(find(t, "b")->type, NodeType::Directory);
  EXPECT_EQ(find(t, "a/inner"), nullptr);
}

TEST(oci_tree, WhiteoutsActOnLowerLayersOnly) {
  MergedTree t;
  t.place(reg("d/new"), 1, "top");
  EXPECT_EQ(t.place(reg("d/.wh.gone"), 1, "top"), nullptr);
  EXPECT_EQ(t.place(reg("d/.wh.new"), 1, "top"), nullptr);  // same layer: does not remove d/new
  EXPECT_EQ(t.place(reg("d/gone"), 2, "low"), nullptr);
  ASSERT_NE(t.place(reg("d/kept"), 2, "low"), nullptr);
  EXPECT_NE(find(t, "d/new"), nullptr);
  EXPECT_EQ(find(t, "d/gone"), nullptr);
  EXPECT_EQ(find(t, "d/.wh.gone"), nullptr);
}

TEST(oci_tree, OpaqueHidesLowerChildrenWhateverTheOrder) {
  MergedTree t;
  t.place(reg("d/mine"), 1, "top");
  t.place(reg("d/.wh..wh..opq"), 1, "top");  // after a sibling in tar order
  EXPECT_EQ(t.place(reg("d/old"), 2, "low"), nullptr);
  EXPECT_EQ(t.place(reg("d/sub/deep"), 2, "low"), nullptr);
  EXPECT_NE(find(t, "d/mine"), nullptr);
  EXPECT_EQ(find(t, "d/old"), nullptr);
}

TEST(oci_tree, BadWhiteoutsAreRejected) {
  MergedTree t;
  EXPECT_THROW(t.place(reg("d/.wh."), 1, "top"), Error);
  EXPECT_THROW(t.place(reg("d/.wh.."), 1, "top"), Error);
  EXPECT_THROW(t.place(reg("d/.wh..."), 1, "top"), Error);
  EXPECT_THROW(t.place(reg("d/.wh..wh.plnk"), 1, "top"), Error);
}

TEST(oci_tree, PathThroughSymlinkIsRejected) {
  MergedTree same;
  same.place(sym("lib", "/etc"), 1, "layer");
  EXPECT_THROW(same.place(reg("lib/passwd"), 1, "layer"), Error);

  MergedTree cross;  // the symlink is planted by a lower (earlier) layer
  cross.place(reg("lib/passwd"), 1, "top");
  EXPECT_THROW(cross.place(sym("lib", "/etc"), 2, "low"), Error);
}

TEST(oci_tree, HardLinksResolveWithinLayerAndBelow) {
  MergedTree t;
  EntrySpec link = reg("bin/b");
  link.hardlink_target = "bin/a";
  Node* a = t.place(reg("bin/a"), 1, "top");
  Node* b = t.place(link, 1, "top");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->body, b->body);

  EntrySpec down = reg("bin/c");
  down.hardlink_target = "lib/x";  // lives in a lower layer
  Node* c = t.place(down, 1, "top");
  Node* x = t.place(reg("lib/x"), 2, "low");
  t.resolve_hard_links();
  EXPECT_EQ(c->body, x->body);

  MergedTree missing;
  EntrySpec dangling = reg("a");
  dangling.hardlink_target = "nowhere";
  missing.place(dangling, 1, "top");
  EXPECT_THROW(missing.resolve_hard_links(), Error);
  EntrySpec outside = reg("b");
  outside.hardlink_target = "../../etc/shadow";
  EXPECT_THROW(missing.place(outside, 1, "top"), Error);
}

TEST(oci_tree, ResolveFollowsSymlinksInsideTheImage) {
  MergedTree t;
  t.place(sym("bin", "usr/bin"), 1, "top");
  t.place(sym("usr/bin/sh", "dash"), 1, "top");
  t.place(reg("usr/bin/dash"), 1, "top");
  const Node* sh = t.resolve("bin/sh");
  ASSERT_NE(sh, nullptr);
  EXPECT_EQ(sh->type, NodeType::Regular);
  EXPECT_EQ(t.resolve("bin/bash"), nullptr);
}

TEST(oci_enroot, RcExecsEntrypointWithQuotedWords) {
  nlohmann::json cfg = {{"config",
                         {{"Entrypoint", {"/bin/echo", "it's"}},
                          {"Cmd", {"a b"}},
                          {"WorkingDir", "/w"},
                          {"Env", {"A=1", "B=two words"}},
                          {"Volumes", {{"/data", nlohmann::json::object()}}},
                          {"Labels", {{"k", "v"}}}}}};
  EnrootFiles f = enroot_files(cfg);
  std::map<std::string, std::string> by_path;
  for (auto& g : f.files) by_path[g.path] = g.content;
  EXPECT_EQ(by_path["etc/environment"], "A=1\nB=two words\n");
  EXPECT_EQ(by_path["etc/fstab"], "${ENROOT_ROOTFS}/data /data none x-create=dir,bind,rw,nosuid,nodev\n");
  const std::string& rc = by_path["etc/rc"];
  EXPECT_NE(rc.find("# k v\n"), std::string::npos);
  EXPECT_NE(rc.find("cd '/w' && unset OLDPWD || exit 1"), std::string::npos);
  EXPECT_NE(rc.find("exec '/bin/echo' 'it'\\''s' \"$@\""), std::string::npos);
  EXPECT_NE(rc.find("exec '/bin/echo' 'it'\\''s' 'a b'\n"), std::string::npos);
  EXPECT_EQ(f.workdir, "/w");
}

TEST(oci_enroot, EmptyConfigRunsAShell) {
  EnrootFiles f = enroot_files(nlohmann::json::object());
  for (auto& g : f.files)
    if (g.path == "etc/rc") EXPECT_NE(g.content.find("exec '/bin/sh'\n"), std::string::npos);
  EXPECT_EQ(f.workdir, "/");
}

TEST(oci_tree, HardLinkToASymlinkBecomesAnEqualSymlink) {
  MergedTree t;
  t.place(sym("lib/libz.so", "libz.so.1"), 1, "top");
  EntrySpec link = reg("lib/libz-dev.so");
  link.hardlink_target = "lib/libz.so";
  Node* n = t.place(link, 1, "top");
  t.resolve_hard_links();
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->type, NodeType::Symlink);
  EXPECT_EQ(n->symlink_target, "libz.so.1");
}
