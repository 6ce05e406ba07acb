// Patches from responses: finding them, their formats, and every path trick refused before the
// file system sees it.
#include "env/code/patch.hpp"

#include <gtest/gtest.h>

using namespace nemokit::rl::code;

namespace {
Files repo() {
  Files f;
  f["calc.sh"] = {"add() {\n  echo $(( $1 - $2 ))\n}\n", false, ""};
  f["src/main.c"] = {"int main(void) {\n  return 1;\n}\n", false, ""};
  f["link"] = {"", false, "/etc"};
  return f;
}

std::string apply_response(const std::string& response, Files& files) {
  try {
    auto text = extract_patch(response);
    if (!text) return "no patch";
    apply_patch(files, parse_patch(*text));
    return "";
  } catch (const PatchError& e) {
    return e.what();
  }
}

const char* kGood =
    "--- a/calc.sh\n"
    "+++ b/calc.sh\n"
    "@@ -1,3 +1,3 @@\n"
    " add() {\n"
    "-  echo $(( $1 - $2 ))\n"
    "+  echo $(( $1 + $2 ))\n"
    " }\n";
}  // namespace

TEST(EnvPatch, FencedRawAndGitForms) {
  for (std::string response : {std::string("Fix:\n```diff\n") + kGood + "```\nDone.", std::string(kGood),
                               std::string("Some talk\n") + kGood, std::string("```\n") + kGood + "```"}) {
    Files f = repo();
    EXPECT_EQ(apply_response(response, f), "") << response;
    EXPECT_EQ(f["calc.sh"].content, "add() {\n  echo $(( $1 + $2 ))\n}\n");
  }
  Files f = repo();
  EXPECT_EQ(apply_response("diff --git a/new.txt b/new.txt\nnew file mode 100755\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n"
                  "\\ No newline at end of file\n",
                  f),
            "");
  EXPECT_EQ(f["new.txt"].content, "a\nb");
  EXPECT_TRUE(f["new.txt"].executable);
  EXPECT_EQ(apply_response("--- calc.sh\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-add() {\n-  echo $(( $1 - $2 ))\n-}\n", f), "");
  EXPECT_FALSE(f.count("calc.sh"));
  EXPECT_EQ(apply_response("diff --git a/src/main.c b/src/app.c\nsimilarity index 100%\nrename from src/main.c\nrename to src/app.c\n", f), "");
  EXPECT_TRUE(f.count("src/app.c"));
  EXPECT_FALSE(f.count("src/main.c"));
}

TEST(EnvPatch, HunkOffsetsAndMismatches) {
  Files f = repo();
  f["calc.sh"].content = "# header\n# more\n" + f["calc.sh"].content;  // the hunk now sits 2 lines lower
  EXPECT_EQ(apply_response(kGood, f), "");
  EXPECT_EQ(f["calc.sh"].content, "# header\n# more\nadd() {\n  echo $(( $1 + $2 ))\n}\n");
  Files g = repo();
  EXPECT_NE(apply_response("--- a/calc.sh\n+++ b/calc.sh\n@@ -1,2 +1,2 @@\n add() {\n-  echo nope\n+  echo x\n", g).find("does not match"),
            std::string::npos);
  EXPECT_NE(apply_response("--- a/calc.sh\n+++ b/calc.sh\n@@ -1,3 +1,3 @@\n add() {\n", g).find("cut short"), std::string::npos);
  EXPECT_NE(apply_response("--- a/nope.c\n+++ b/nope.c\n@@ -1 +1 @@\n-a\n+b\n", g).find("no such file"), std::string::npos);
  EXPECT_EQ(apply_response("no diff here at all", g), "no patch");
  EXPECT_EQ(g["calc.sh"].content, repo()["calc.sh"].content);  // failed patches change nothing
}

TEST(EnvPatch, PathEscapesAreRefused) {
  for (const char* bad : {"--- a/../outside.txt\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n",
                          "--- /dev/null\n+++ /etc/cron.d/evil\n@@ -0,0 +1 @@\n+x\n",
                          "--- /dev/null\n+++ b/src/../../x\n@@ -0,0 +1 @@\n+x\n",
                          "--- /dev/null\n+++ b/link/passwd\n@@ -0,0 +1 @@\n+x\n",
                          "--- a/link\n+++ b/link\n@@ -1 +1 @@\n-x\n+y\n",
                          "diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n",
                          "diff --git a/x b/x\nGIT binary patch\nliteral 1\n",
                          "--- /dev/null\n+++ \"b/q\"\n@@ -0,0 +1 @@\n+x\n",
                          "--- /dev/null\n+++ b/calc.sh/inner\n@@ -0,0 +1 @@\n+x\n"}) {
    Files f = repo();
    std::string err = apply_response(bad, f);
    EXPECT_NE(err, "") << bad;
    EXPECT_EQ(f.size(), repo().size()) << bad;
  }
  Files f = repo();
  EXPECT_NE(apply_response("--- /dev/null\n+++ b/link/passwd\n@@ -0,0 +1 @@\n+x\n", f).find("symlink"), std::string::npos);
  EXPECT_NE(apply_response("--- /dev/null\n+++ /etc/cron.d/evil\n@@ -0,0 +1 @@\n+x\n", f).find("absolute"), std::string::npos);
  EXPECT_THROW(clean_repo_path("a/../../b"), PatchError);
  EXPECT_EQ(clean_repo_path("./a//b/"), "a/b");
}
