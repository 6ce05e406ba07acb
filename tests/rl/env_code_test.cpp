// The code-execution environment: right and wrong patches on small shell and C repositories, the
// tool session, and one test per hostile answer, each checking the host afterwards: the canary
// files (world-writable, and visible read-only in the sandbox) unchanged, no process of the
// sandbox's uid range left, no sandbox folder left in /tmp, and the answer scored in bounded time.
#include "env/environment.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include "support/files.hpp"

using nemokit::test::read_file;

namespace fs = std::filesystem;
using nemokit::rl::EnvironmentSet;
using nemokit::rl::Reward;
using nlohmann::json;

namespace {

constexpr uint32_t kUidBase = 3100000000u;

json settings() {
  return {{"code_execution",
           {{"wall_seconds", 6}, {"cpu_seconds", 2}, {"memory_mb", 512}, {"max_processes", 32},
            {"output_bytes", 4096}, {"disk_mb", 64}, {"uid_base", kUidBase}}}};
}


// Processes whose uid lies in the sandboxes' range.
int sandbox_processes() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("Uid:", 0) == 0) {
        unsigned long uid = std::stoul(line.substr(4));
        if (uid >= kUidBase && uid < kUidBase + (1u << 24)) ++n;
      }
  }
  return n;
}

int sandbox_folders() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/tmp"))
    if (e.path().filename().string().rfind("nemokit-sandbox-", 0) == 0) ++n;
  return n;
}

const char* kCalc = "add() { echo $(( $1 - $2 )); }\n";
const char* kTest = ". ./calc.sh\n[ \"$(add 2 3)\" = 5 ] && [ \"$(add -1 1)\" = 0 ]\n";

json shell_task() {
  return {{"environment", "code_execution"},
          {"files", {{"calc.sh", kCalc}, {"test.sh", kTest}}},
          {"test_command", "sh test.sh"},
          {"protected", {"test.sh"}}};
}

// A patch that replaces calc.sh's one line with `lines`.
std::string replace_calc(const std::vector<std::string>& lines) {
  std::string p = "```diff\n--- a/calc.sh\n+++ b/calc.sh\n@@ -1 +1," + std::to_string(lines.size()) + " @@\n-" +
                  std::string(kCalc);
  for (const auto& l : lines) p += "+" + l + "\n";
  return p + "```\n";
}

class CodeEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (namespaces, mounts)";
    set_ = std::make_unique<EnvironmentSet>(EnvironmentSet::load(settings()));
    // Under the build tree, not /tmp: the sandbox sees this folder (read-only through its overlay).
    canary_dir_ = fs::path(NEMOKIT_BINARY_DIR) / ("rl-canary-" + std::to_string(getpid()));
    fs::create_directories(canary_dir_);
    fs::permissions(canary_dir_, fs::perms::all);
    canary_ = canary_dir_ / "canary";
    std::ofstream(canary_) << "untouched\n";
    fs::permissions(canary_, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                 fs::perms::group_write | fs::perms::others_read | fs::perms::others_write);
    folders_before_ = sandbox_folders();
    repos_ = fs::path(NEMOKIT_BINARY_DIR) / ("rl-repos-" + std::to_string(getpid()));
    fs::create_directories(repos_);
  }

  void TearDown() override {
    if (canary_dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(canary_dir_, ec);
    fs::remove_all(repos_, ec);
  }

  // Scores and checks the host afterwards.
  Reward score_checked(const json& task, const std::string& response, double max_seconds = 20) {
    auto t0 = std::chrono::steady_clock::now();
    Reward r = set_->score(task, response);
    std::cout << "  reward " << r.value << ": " << r.reason << "\n";
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(secs, max_seconds) << r.reason;
    EXPECT_FALSE(r.reason.empty());
    EXPECT_EQ(read_file(canary_), "untouched\n");
    std::vector<std::string> entries;
    for (const auto& e : fs::directory_iterator(canary_dir_)) entries.push_back(e.path().filename());
    EXPECT_EQ(entries, std::vector<std::string>{"canary"});
    EXPECT_EQ(sandbox_processes(), 0);
    EXPECT_EQ(sandbox_folders(), folders_before_);
    EXPECT_FALSE(fs::exists("/etc/nemokit-pwned"));
    EXPECT_FALSE(fs::exists("/nemokit-pwned"));
    return r;
  }

  std::unique_ptr<EnvironmentSet> set_;
  fs::path canary_dir_, canary_, repos_;
  int folders_before_ = 0;
};

}  // namespace

TEST_F(CodeEnv, GoodPatchScoresOneWrongPatchesZero) {
  json task = shell_task();
  Reward good = score_checked(task, replace_calc({"add() { echo $(( $1 + $2 )); }"}));
  EXPECT_EQ(good.value, 1) << good.reason;
  Reward wrong = score_checked(task, replace_calc({"add() { echo $(( $1 * $2 )); }"}));
  EXPECT_EQ(wrong.value, 0);
  EXPECT_NE(wrong.reason.find("tests fail (exit code 1"), std::string::npos) << wrong.reason;
  EXPECT_EQ(score_checked(task, "I would change the minus to a plus.").value, 0);
  Reward stale = score_checked(task, "--- a/calc.sh\n+++ b/calc.sh\n@@ -1 +1 @@\n-add() { nope; }\n+add() { :; }\n");
  EXPECT_NE(stale.reason.find("does not match"), std::string::npos) << stale.reason;
  // Rewriting the protected test to pass is refused.
  Reward cheat = score_checked(task, "--- a/test.sh\n+++ b/test.sh\n@@ -1,2 +1 @@\n-. ./calc.sh\n-[ \"$(add 2 3)\" = 5 ] && "
                                     "[ \"$(add -1 1)\" = 0 ]\n+exit 0\n");
  EXPECT_EQ(cheat.value, 0);
  EXPECT_NE(cheat.reason.find("protects"), std::string::npos) << cheat.reason;
}

TEST_F(CodeEnv, CRepositoryFromAFolder) {
  fs::path repo = repos_ / "repo";
  fs::create_directories(repo / "src");
  std::ofstream(repo / "src/add.c") << "int add(int a, int b) {\n  return a - b;\n}\n";
  std::ofstream(repo / "test.c") << "#include <stdio.h>\nint add(int, int);\n"
                                    "int main(void) { if (add(2, 3) != 5) { puts(\"add(2,3) wrong\"); return 1; } return 0; }\n";
  json task = {{"environment", "code_execution"}, {"repo", repo.string()},
               {"test_command", "cc -o /tmp/t test.c src/add.c && /tmp/t"}};
  const char* fix = "diff --git a/src/add.c b/src/add.c\nindex 1..2 100644\n--- a/src/add.c\n+++ b/src/add.c\n"
                    "@@ -1,3 +1,3 @@\n int add(int a, int b) {\n-  return a - b;\n+  return a + b;\n }\n";
  Reward good = set_->score(task, fix);
  EXPECT_EQ(good.value, 1) << good.reason;
  Reward bad = set_->score(task, "");
  EXPECT_EQ(bad.value, 0);
  Reward unfixed = set_->score(task, "--- a/test.c\n+++ b/test.c\n@@ -1 +1 @@\n-#include <stdio.h>\n+#include <stdio.h>\n");
  EXPECT_EQ(unfixed.value, 0);
  EXPECT_NE(unfixed.reason.find("add(2,3) wrong"), std::string::npos) << unfixed.reason;
  EXPECT_EQ(read_file(repo / "src/add.c"), "int add(int a, int b) {\n  return a - b;\n}\n");  // the task's folder is untouched
}

TEST_F(CodeEnv, ToolSessionKeepsStateAndIsConfined) {
  auto tools = set_->tools(shell_task());
  ASSERT_NE(tools, nullptr);
  EXPECT_EQ(tools->run("echo hello > note && cat note").output, "hello\n");
  EXPECT_EQ(tools->run("cat note; cat calc.sh").output, std::string("hello\n") + kCalc);
  auto id = tools->run("id -u");
  EXPECT_GE(std::stoul(id.output), kUidBase);
  auto net = tools->run("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
  EXPECT_EQ(net.output, "lo\n");  // no network but loopback
  tools->run("sleep 300 &");
  EXPECT_EQ(tools->run("ps -e -o comm= | grep -c sleep").output, "0\n");  // killed after its command
  EXPECT_EQ(tools->run("exit 3").exit_code, 3);
  tools.reset();
  EXPECT_EQ(sandbox_processes(), 0);
  EXPECT_EQ(sandbox_folders(), folders_before_);
}

TEST_F(CodeEnv, HostileForkBomb) {
  Reward r = score_checked(shell_task(), replace_calc({"bomb() { bomb | bomb & }; bomb", "add() { :; }"}));
  EXPECT_EQ(r.value, 0) << r.reason;
}

TEST_F(CodeEnv, HostileEndlessLoop) {
  Reward r = score_checked(shell_task(), replace_calc({"while :; do :; done"}));
  EXPECT_EQ(r.value, 0);
  EXPECT_NE(r.reason.find("CPU time limit"), std::string::npos) << r.reason;
  Reward s = score_checked(shell_task(), replace_calc({"sleep 1000"}));  // no CPU used: the wall limit ends it
  EXPECT_NE(s.reason.find("wall time limit"), std::string::npos) << s.reason;
}

TEST_F(CodeEnv, HostileWritesOutsideTheWorkFolder) {
  std::string c = canary_.string(), d = canary_dir_.string();
  Reward r = score_checked(shell_task(), replace_calc({"echo pwned > " + c, "rm -f " + c, "echo x > " + d + "/new",
                                                        "echo x > /etc/nemokit-pwned", "echo x > /nemokit-pwned",
                                                        "add() { echo $(( $1 + $2 )); }"}));
  // Whatever it wrote stayed in the throwaway overlay; the tests themselves pass.
  EXPECT_EQ(r.value, 1) << r.reason;
}

TEST_F(CodeEnv, HostileHugeOutputAndDisk) {
  Reward r = score_checked(shell_task(), replace_calc({"head -c 200000000 /dev/zero | tr '\\0' x", "exit 1"}));
  EXPECT_EQ(r.value, 0);
  EXPECT_NE(r.reason.find("bytes of output dropped"), std::string::npos) << r.reason;
  EXPECT_LT(r.reason.size(), 1000u);
  Reward d = score_checked(shell_task(), replace_calc({"dd if=/dev/zero of=big bs=1M count=500 2>&1", "add() { :; }"}));
  EXPECT_EQ(d.value, 0) << d.reason;
}

TEST_F(CodeEnv, HostileMemoryHog) {
  Reward r = score_checked(shell_task(), replace_calc({"x=$(head -c 900000000 /dev/zero | tr '\\0' x)", "add() { :; }"}));
  EXPECT_EQ(r.value, 0) << r.reason;
}

TEST_F(CodeEnv, HostilePatchEscapesTheRepository) {
  for (std::string p : {"--- /dev/null\n+++ b/../../../../" + canary_.string() + "\n@@ -0,0 +1 @@\n+pwned\n",
                        "--- /dev/null\n+++ " + canary_dir_.string() + "/new\n@@ -0,0 +1 @@\n+pwned\n",
                        "--- a/calc.sh\n+++ b/../calc.sh\n@@ -1 +1 @@\n-" + std::string(kCalc) + "+x\n"}) {
    Reward r = score_checked(shell_task(), p);
    EXPECT_EQ(r.value, 0);
    EXPECT_NE(r.reason.find("patch refused"), std::string::npos) << r.reason;
  }
}

TEST_F(CodeEnv, HostileSymlinkTricks) {
  // A repository holding a symlink to the canary's folder: the patch may not write through it.
  fs::path repo = repos_ / "linkrepo";
  fs::create_directories(repo);
  std::ofstream(repo / "calc.sh") << kCalc;
  std::ofstream(repo / "test.sh") << kTest;
  fs::create_directory_symlink(canary_dir_, repo / "out");
  json task = {{"environment", "code_execution"}, {"repo", repo.string()}, {"test_command", "sh test.sh"}};
  Reward through = score_checked(task, "--- a/out/canary\n+++ b/out/canary\n@@ -1 +1 @@\n-untouched\n+pwned\n");
  EXPECT_NE(through.reason.find("symlink"), std::string::npos) << through.reason;
  Reward made = score_checked(shell_task(), "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+" +
                                                canary_.string() + "\n");
  EXPECT_NE(made.reason.find("symlink"), std::string::npos) << made.reason;
  // Links the test command itself makes lead into the overlay, never onto the host.
  Reward run = score_checked(task, replace_calc({"ln -s " + canary_dir_.string() + " l2", "echo pwned > l2/canary",
                                                 "echo pwned > out/canary", "add() { :; }"}));
  EXPECT_EQ(run.value, 0);
  fs::remove_all(repo);
}

TEST_F(CodeEnv, HostileKillsItsParents) {
  std::string me = std::to_string(getpid());
  Reward r = score_checked(shell_task(), replace_calc({"kill -9 $PPID " + me + " 1 2>/dev/null", "kill -9 -1",
                                                       "add() { echo $(( $1 + $2 )); }"}));
  EXPECT_EQ(r.value, 0) << r.reason;  // it killed its own shell
  // The environment still works afterwards.
  EXPECT_EQ(score_checked(shell_task(), replace_calc({"add() { echo $(( $1 + $2 )); }"})).value, 1);
}

TEST_F(CodeEnv, HostileMalformedResponses) {
  std::string garbage;
  for (unsigned i = 0; i < 300000; ++i) garbage += static_cast<char>((i * 7919u) % 256u);
  for (const std::string& resp : {std::string(), garbage, std::string("```diff\n--- a/calc.sh\n+++ b/calc.sh\n@@ -x +y @@\n```"),
                                  std::string("--- a/calc.sh\n+++ b/calc.sh\n@@ -1 +1,99999 @@\n-") + kCalc + "+x\n",
                                  std::string(2000000, '+')}) {
    Reward r = score_checked(shell_task(), resp);
    EXPECT_EQ(r.value, 0) << r.reason;
  }
}
