// The plugin host against real plugin files: the four in-tree plugins, and one real bad file for
// each way a plugin can fail. Every failure is one line naming the file, and the other plugins
// still load.
#include "plugins/plugin_host.hpp"
#include "run_cli.hpp"
#include "util/error.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

namespace fs = std::filesystem;
using nemokit::PluginRegistry;
using nemokit::test::run_cli;

namespace {
const fs::path kInTree = fs::path(NEMOKIT_BINARY_DIR) / "lib" / "nemokit" / "plugins";
const fs::path kCases = PLUGIN_CASES;

PluginRegistry with_case(const std::string& name) { return PluginRegistry::discover({kInTree, kCases / name}); }

std::string problems_of(const PluginRegistry& r) {
  std::string all;
  for (const auto& p : r.problems()) all += p + "\n";
  return all;
}
}  // namespace

TEST(PluginHost, InTreePluginsRegisterEveryRecipeTriple) {
  PluginRegistry r = PluginRegistry::discover({kInTree});
  EXPECT_TRUE(r.problems().empty()) << problems_of(r);
  for (const char* name : {"stage_pretrain", "stage_sft", "stage_rl", "builder_oci"}) EXPECT_NE(r.plugin(name), nullptr) << name;
  for (auto [f, s, sub] : std::vector<std::tuple<const char*, const char*, const char*>>{
           {"nano3", "pretrain", ""}, {"super3", "pretrain", ""}, {"nano3", "sft", ""}, {"nano3", "rl", ""}, {"super3", "sft", ""}, {"super3", "rl", "rlvr"},
           {"super3", "rl", "swe1"}, {"super3", "rl", "swe2"}, {"super3", "rl", "rlhf"}}) {
    const auto& e = r.stage(f, s, sub);
    EXPECT_FALSE(e.image.empty()) << e.triple();
    EXPECT_TRUE(e.configs.count("tiny")) << e.triple();
  }
  for (const char* img : {"nano3-pretrain", "nano3-sft", "nano3-rl", "omni3-sft", "omni3-rl"}) {
    const auto* im = r.image(img);
    ASSERT_NE(im, nullptr) << img;
    auto df = im->plugin->resource(im->dockerfile);
    ASSERT_TRUE(df.has_value());
    EXPECT_NE(df->find("FROM"), std::string::npos);
  }
  EXPECT_NE(r.builder(), nullptr);
  EXPECT_NE(r.command_provider("image"), nullptr);
}

TEST(PluginHost, NotASharedLibraryIsReportedNotFatal) {
  fs::path dir = nemokit::test::temp_folder("notelf");
  std::ofstream(dir / "text.so") << "this is not an ELF file\n";
  fs::copy_file("/usr/lib/x86_64-linux-gnu/libc_nonshared.a", dir / "archive.so");  // a real static archive
  PluginRegistry r = PluginRegistry::discover({kInTree, dir});
  ASSERT_EQ(r.problems().size(), 2u) << problems_of(r);
  for (const auto& p : r.problems()) {
    EXPECT_NE(p.find(dir.string()), std::string::npos) << p;
    EXPECT_NE(p.find("not a shared library"), std::string::npos) << p;
  }
  EXPECT_NO_THROW(r.stage("nano3", "sft", ""));  // the good ones still load
  fs::remove_all(dir);
}

TEST(PluginHost, AbiMajorMismatchNamesBothVersionsWithoutLoading) {
  PluginRegistry r = with_case("future_abi");
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  const std::string& p = r.problems()[0];
  EXPECT_NE(p.find("future_abi.so"), std::string::npos) << p;
  EXPECT_NE(p.find("ABI major 2"), std::string::npos) << p;
  EXPECT_NE(p.find("ABI 1.0"), std::string::npos) << p;
  // Its entry aborts if run: the CLI listing must not crash.
  auto res = run_cli("recipes", "NEMOKIT_PLUGIN_PATH=" + (kCases / "future_abi").string());
  EXPECT_EQ(res.rc, 0) << res.err;
  EXPECT_NE(res.out.find("nano3 sft"), std::string::npos);
  EXPECT_NE(res.err.find("ABI major 2"), std::string::npos) << res.err;
}

TEST(PluginHost, MissingEntryPoint) {
  PluginRegistry r = with_case("no_entry");
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  EXPECT_NE(r.problems()[0].find("no_entry.so: missing entry point"), std::string::npos) << r.problems()[0];
}

TEST(PluginHost, DuplicateTripleNamesBothFilesAndRefusesIt) {
  PluginRegistry r = with_case("dup_sft");
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  const std::string& p = r.problems()[0];
  EXPECT_NE(p.find("nano3 sft"), std::string::npos) << p;
  EXPECT_NE(p.find("stage_sft.so"), std::string::npos) << p;
  EXPECT_NE(p.find("dup_sft.so"), std::string::npos) << p;
  EXPECT_THROW(r.stage("nano3", "sft", ""), nemokit::UserError);
  EXPECT_NO_THROW(r.stage("nano3", "rl", ""));
  auto res = run_cli("run nano3 sft -c tiny --dry-run", "NEMOKIT_PLUGIN_PATH=" + (kCases / "dup_sft").string());
  EXPECT_EQ(res.rc, 2);
  EXPECT_NE(res.err.find("dup_sft.so"), std::string::npos) << res.err;
}

TEST(PluginHost, ManifestNotValidJson) {
  PluginRegistry r = with_case("bad_manifest");
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  EXPECT_NE(r.problems()[0].find("bad_manifest.so: manifest is not valid JSON"), std::string::npos) << r.problems()[0];
}

TEST(PluginHost, NewerMinorIsRefused) {
  PluginRegistry r = with_case("newer_minor");
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  EXPECT_NE(r.problems()[0].find("needs ABI 1.99"), std::string::npos) << r.problems()[0];
}

TEST(PluginHost, LoadsAndInvokesAPluginFromThePath) {
  PluginRegistry r = with_case("good_extra");
  ASSERT_TRUE(r.problems().empty()) << problems_of(r);
  const auto& e = r.stage("extra", "sft", "");
  EXPECT_EQ(e.plugin->version, "1.2.3");
  EXPECT_EQ(e.plugin->resource("configs/extra.toml").value_or(""), "[train]\nlr = 0.5\n");
  auto res = run_cli("run extra sft -c tiny", "NEMOKIT_PLUGIN_PATH=" + (kCases / "good_extra").string() +
                                                  " NEMOKIT_JOB_ROOT=" + nemokit::test::temp_folder("jobs").string());
  EXPECT_EQ(res.rc, 0) << res.err;
  EXPECT_NE(res.out.find("test stage good_extra ran extra sft"), std::string::npos) << res.out;
}

TEST(PluginHost, PluginsCommandListsAndReportsProblems) {
  auto ok = run_cli("plugins");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  for (const char* n : {"stage_sft", "stage_rl", "builder_oci"}) EXPECT_NE(ok.out.find(n), std::string::npos) << n;
  auto bad = run_cli("plugins", "NEMOKIT_PLUGIN_PATH=" + (kCases / "no_entry").string() + ":" + (kCases / "future_abi").string());
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.err.find("missing entry point"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("ABI major 2"), std::string::npos) << bad.err;
  auto info = run_cli("plugins info stage_rl");
  EXPECT_EQ(info.rc, 0);
  EXPECT_NE(info.out.find("super3 rl rlhf"), std::string::npos) << info.out;
}

// As Slurm refuses plugins on insecure paths: a plugin anyone could have replaced (its file or its
// folder writable by everyone, or owned by another user) is refused, naming why, before any of its
// code is read or run; the other plugins still load.
namespace {
// good_extra.so copied into a fresh folder of `folder_mode`, the copy given `file_mode`.
fs::path good_plugin_copy(const std::string& name, fs::perms folder_mode, fs::perms file_mode) {
  const fs::path dir = nemokit::test::temp_folder(name) / "plugins";
  fs::create_directories(dir);
  const fs::path so = dir / "good_extra.so";
  fs::copy_file(kCases / "good_extra" / "good_extra.so", so);
  fs::permissions(so, file_mode);
  fs::permissions(dir, folder_mode);
  return dir;
}
}  // namespace

TEST(PluginHost, PluginInAWorldWritableFolderIsRefused) {
  const fs::path dir = good_plugin_copy("ww-folder", fs::perms::all, fs::perms(0755));
  PluginRegistry r = PluginRegistry::discover({kInTree, dir});
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  const std::string& p = r.problems()[0];
  EXPECT_NE(p.find((dir / "good_extra.so").string() + ": refused"), std::string::npos) << p;
  EXPECT_NE(p.find("the folder " + fs::canonical(dir).string() + " is writable by everyone (mode 0777)"), std::string::npos) << p;
  EXPECT_THROW(r.stage("extra", "sft", ""), nemokit::UserError);
  EXPECT_NO_THROW(r.stage("nano3", "sft", ""));
  // The sticky bit of /tmp does not make it safe: anyone may still add a plugin there.
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);
  EXPECT_EQ(PluginRegistry::discover({dir}).problems().size(), 1u);
  // Once the folder is the owner's alone, the same file loads.
  fs::permissions(dir, fs::perms(0755));
  PluginRegistry fixed = PluginRegistry::discover({kInTree, dir});
  EXPECT_TRUE(fixed.problems().empty()) << problems_of(fixed);
  EXPECT_NO_THROW(fixed.stage("extra", "sft", ""));
}

TEST(PluginHost, WorldWritablePluginFileIsRefusedAndTheCliSaysWhy) {
  const fs::path dir = good_plugin_copy("ww-file", fs::perms(0755), fs::perms(0777));
  PluginRegistry r = PluginRegistry::discover({kInTree, dir});
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  EXPECT_NE(r.problems()[0].find("the plugin file " + fs::canonical(dir / "good_extra.so").string() +
                                 " is writable by everyone (mode 0777)"),
            std::string::npos) << r.problems()[0];
  auto res = run_cli("plugins", "NEMOKIT_PLUGIN_PATH=" + dir.string());
  EXPECT_EQ(res.rc, 1);
  EXPECT_NE(res.err.find("good_extra.so: refused"), std::string::npos) << res.err;
  EXPECT_NE(res.err.find("is writable by everyone"), std::string::npos) << res.err;
  auto run = run_cli("run extra sft -c tiny", "NEMOKIT_PLUGIN_PATH=" + dir.string());
  EXPECT_NE(run.rc, 0);
  EXPECT_EQ(run.out.find("test stage good_extra ran"), std::string::npos) << run.out;
}

TEST(PluginHost, PluginOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root (chown)";
  const fs::path dir = good_plugin_copy("other-owner", fs::perms(0755), fs::perms(0755));
  ASSERT_EQ(::chown((dir / "good_extra.so").c_str(), 65534, 65534), 0);
  PluginRegistry r = PluginRegistry::discover({kInTree, dir});
  ASSERT_EQ(r.problems().size(), 1u) << problems_of(r);
  EXPECT_NE(r.problems()[0].find("is owned by user id 65534, neither root nor you (0)"), std::string::npos) << r.problems()[0];
  // A folder of another user is refused the same way, whoever owns the file.
  ASSERT_EQ(::chown((dir / "good_extra.so").c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  PluginRegistry folder = PluginRegistry::discover({dir});
  ASSERT_EQ(folder.problems().size(), 1u) << problems_of(folder);
  EXPECT_NE(folder.problems()[0].find("the folder " + fs::canonical(dir).string() + " is owned by user id 65534"),
            std::string::npos) << folder.problems()[0];
}
