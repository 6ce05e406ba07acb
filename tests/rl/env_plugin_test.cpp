// Environment plugins as a third party ships them: sdk/examples/hello_reward built as its own
// CMake project against an installed SDK, then loaded by EnvironmentSet; and plugins the host
// must refuse, naming both ABI versions, without running any of their code.
#include "env/environment.hpp"
#include "run_cli.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include "support/files.hpp"

using nemokit::test::read_file;

namespace fs = std::filesystem;
using nemokit::rl::EnvironmentSet;
using nlohmann::json;

namespace {
int sh(const std::string& cmd, const fs::path& log) {
  int st = std::system((cmd + " >>'" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::string load_error(const json& config) {
  try {
    EnvironmentSet::load(config);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(EnvPlugin, OutOfTreeEnvironmentBuildsAgainstInstalledSdkAndScores) {
  fs::path tmp = nemokit::test::temp_folder("reward-sdk");
  fs::path prefix = tmp / "prefix", build = tmp / "build", log = tmp / "log.txt";
  const std::string cmake = NEMOKIT_CMAKE_COMMAND;
  for (const char* component : {"sdk", "runtime"})
    ASSERT_EQ(sh("'" + cmake + "' --install '" NEMOKIT_BINARY_DIR "' --prefix '" + prefix.string() + "' --component " +
                     component,
                 log),
              0)
        << nemokit::test::read_file(log);
  ASSERT_TRUE(fs::exists(prefix / "include/nemokit/reward.h"));
  ASSERT_TRUE(fs::exists(prefix / "include/nemokit/reward.hpp"));
  ASSERT_EQ(sh("'" + cmake + "' -S '" NEMOKIT_SOURCE_DIR "/sdk/examples/hello_reward' -B '" + build.string() +
                   "' -DCMAKE_PREFIX_PATH='" + prefix.string() + "' -DCMAKE_BUILD_TYPE=Release",
               log),
            0)
      << nemokit::test::read_file(log);
  ASSERT_EQ(sh("'" + cmake + "' --build '" + build.string() + "'", log), 0) << nemokit::test::read_file(log);
  fs::path so = build / "hello_reward.so";
  ASSERT_TRUE(fs::exists(so));

  auto set = EnvironmentSet::load({{"plugins", {so.string()}}, {"exact_text", {{"ignore_case", true}}}});
  auto names = set.names();
  EXPECT_NE(std::find(names.begin(), names.end(), "exact_text"), names.end());
  json task = {{"environment", "exact_text"}, {"expected_answer", "Paris"}};
  EXPECT_EQ(set.score(task, "  paris \n").value, 1);  // the setting reached the plugin
  auto wrong = set.score(task, "Rome");
  EXPECT_EQ(wrong.value, 0);
  EXPECT_EQ(wrong.reason, "expected \"Paris\", got \"Rome\"");
  EXPECT_EQ(set.score(task, std::string("Par\0is", 6)).value, 0);  // NUL bytes cross the boundary intact
  try {
    set.score({{"environment", "exact_text"}}, "x");
    FAIL() << "a task without expected_answer was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected_answer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(so.string()), std::string::npos) << e.what();
  }
  auto tools = set.tools(task);
  ASSERT_NE(tools, nullptr);
  EXPECT_EQ(tools->run("ls").output, "1: ls");
  EXPECT_EQ(tools->run("pwd").output, "2: pwd");
  EXPECT_EQ(tools->run("").exit_code, 1);

  // Two files serving one name: an error naming both, before either is loaded.
  fs::copy_file(so, tmp / "copy.so");
  std::string dup = load_error({{"plugins", {so.string(), (tmp / "copy.so").string()}}});
  EXPECT_NE(dup.find("\"exact_text\" is served by both " + so.string() + " and " + (tmp / "copy.so").string()),
            std::string::npos)
      << dup;
  // Its folder on NEMOKIT_ENVIRONMENT_PATH finds it too.
  fs::remove(tmp / "copy.so");
  setenv("NEMOKIT_ENVIRONMENT_PATH", build.c_str(), 1);
  auto from_path = EnvironmentSet::load(json::object());
  unsetenv("NEMOKIT_ENVIRONMENT_PATH");
  EXPECT_EQ(from_path.score(task, "Paris").value, 1);
  fs::remove_all(tmp);
}

TEST(EnvPlugin, OtherAbiMajorIsRefusedWithoutRunningItsCode) {
  fs::path marker = fs::temp_directory_path() / ("nemokit-reward-marker-" + std::to_string(getpid()));
  fs::remove(marker);
  setenv("NEMOKIT_TEST_MARKER", marker.c_str(), 1);
  std::string err = load_error({{"plugins", {REWARD_V2}}});
  EXPECT_NE(err.find(REWARD_V2), std::string::npos) << err;
  EXPECT_NE(err.find("ABI major 2 differs from this nemokit's reward ABI 1.0"), std::string::npos) << err;
  std::string minor = load_error({{"plugins", {REWARD_NEWER_MINOR}}});
  EXPECT_NE(minor.find("needs reward ABI 1.99, newer than this nemokit's 1.0"), std::string::npos) << minor;
  unsetenv("NEMOKIT_TEST_MARKER");
  EXPECT_FALSE(fs::exists(marker)) << "the refused plugin's code ran";
}

TEST(EnvPlugin, StagePluginIsNotAnEnvironmentPlugin) {
  fs::path stage = fs::path(NEMOKIT_BINARY_DIR) / "lib/nemokit/plugins/stage_rl.so";
  if (!fs::exists(stage)) GTEST_SKIP() << "stage_rl is not built";
  std::string err = load_error({{"plugins", {stage.string()}}});
  EXPECT_NE(err.find("not an environment plugin"), std::string::npos) << err;
}
