// The SDK used the way a third party uses it: install nemokit into a temporary prefix, build the
// example plugin as a separate CMake project against that install (find_package(nemokit)), then
// have the *installed* nemokit list it and run it. The example enables C++ alone, as a plugin
// author's project usually does: nemokit_add_plugin must still embed the manifest.
#include "run_cli.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include "support/files.hpp"

using nemokit::test::read_file;

namespace fs = std::filesystem;

namespace {
int sh(const std::string& cmd, const fs::path& log) {
  int st = std::system((cmd + " >>'" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
}  // namespace

TEST(Sdk, OutOfTreePluginBuildsAgainstInstalledSdkAndRuns) {
  fs::path tmp = nemokit::test::temp_folder("sdk");
  fs::path prefix = tmp / "prefix", build = tmp / "example-build", log = tmp / "log.txt";
  const std::string cmake = NEMOKIT_CMAKE_COMMAND;
  ASSERT_EQ(sh("'" + cmake + "' --install '" NEMOKIT_BINARY_DIR "' --prefix '" + prefix.string() + "'", log), 0)
      << nemokit::test::read_file(log);
  for (const char* f : {"bin/nemokit", "include/nemokit/plugin.h", "include/nemokit/plugin.hpp",
                        "lib/cmake/nemokit/nemokitConfig.cmake", "lib/cmake/nemokit/nemokitConfigVersion.cmake",
                        "lib/nemokit/plugins/stage_sft.so", "share/bash-completion/completions/nemokit"})
    EXPECT_TRUE(fs::exists(prefix / f)) << f;
  // No test plugin may leak into an install.
  EXPECT_FALSE(fs::exists(prefix / "lib/nemokit/plugins/dup_sft.so"));

  const std::string example = NEMOKIT_SOURCE_DIR "/sdk/examples/hello_stage";
  ASSERT_NE(nemokit::test::read_file(example + "/CMakeLists.txt").find("LANGUAGES CXX)"), std::string::npos)
      << "the example stands for a CXX-only project";
  ASSERT_EQ(sh("'" + cmake + "' -S '" + example + "' -B '" + build.string() +
                   "' -DCMAKE_PREFIX_PATH='" + prefix.string() + "' -DCMAKE_BUILD_TYPE=Release",
               log),
            0)
      << nemokit::test::read_file(log);
  ASSERT_EQ(sh("'" + cmake + "' --build '" + build.string() + "'", log), 0) << nemokit::test::read_file(log);
  ASSERT_TRUE(fs::exists(build / "hello_stage.so"));

  const std::string installed = "'" + (prefix / "bin/nemokit").string() + "'";
  const std::string env = "NEMOKIT_PLUGIN_PATH='" + build.string() + "' NEMOKIT_JOB_ROOT='" + (tmp / "jobs").string() + "'";
  auto run = [&](const std::string& args) {
    fs::path out = tmp / "out.txt";
    int st = std::system(("env " + env + " " + installed + " " + args + " >'" + out.string() + "' 2>&1").c_str());
    return std::make_pair(WIFEXITED(st) ? WEXITSTATUS(st) : 128, nemokit::test::read_file(out));
  };
  auto [rc1, plugins] = run("plugins");
  EXPECT_EQ(rc1, 0) << plugins;
  EXPECT_EQ(plugins.find("manifest"), std::string::npos) << plugins;  // e.g. "no embedded manifest"
  EXPECT_NE(plugins.find("hello_stage       1.0.0     1.0   " + build.string() + "/hello_stage.so"), std::string::npos) << plugins;
  EXPECT_NE(plugins.find(prefix.string() + "/lib/nemokit/plugins/stage_sft.so"), std::string::npos) << plugins;
  auto [rc2, recipes] = run("recipes");
  EXPECT_NE(recipes.find("example hello"), std::string::npos) << recipes;
  auto [rc3, out] = run("run example hello -c tiny hello.repeat=3");
  EXPECT_EQ(rc3, 0) << out;
  fs::path job = *fs::directory_iterator(tmp / "jobs");
  EXPECT_EQ(nemokit::test::read_file(job / "greeting.txt"),
            "hello from an out-of-tree plugin\nhello from an out-of-tree plugin\nhello from an out-of-tree plugin\n");
  fs::remove_all(tmp);
}
