// make_swe_tasks: the tiny code tasks of super3 rl swe1/swe2 (the code_execution environment).
// Usage: make_swe_tasks OUT_DIR
// Each task is a two-file POSIX sh repository: lib/NAME.sh with one wrong line (swe_families.cpp)
// and tests/test_NAME.sh, whose checks fail because of it. Writes OUT_DIR/swe1.jsonl (the prompt
// shows both files; the answer is a patch) and OUT_DIR/swe2.jsonl (the same repositories; the
// prompt shows the source only and offers the `run` tool, so reading or running the tests takes
// a tool call). Records:
//   {"prompt": [...], "tools"?: [...], "expected_answer": <a reference patch>,
//    "environment": "code_execution", "task": "swe1"|"swe2", "bug": <family kind>,
//    "files": {path: text}, "test_command": ..., "protected": ["tests"]}
// Every variant is checked by running its tests with sh: the buggy repository must fail and the
// fixed one pass (a variant whose cases miss the bug is replaced by the next hash). Names and test
// cases are hashes of (family, variant), so the same generator always writes the same bytes.
#include "swe_families.hpp"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;
using swe::Args;
using swe::Family;

constexpr int kVariantsPerFamily = 42;
constexpr int kCasesPerTask = 4;
constexpr int kTriesPerVariant = 16;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

struct Task {
  std::string name, source_path, test_path, test_command;
  std::vector<std::string> buggy, fixed;  // the source's lines
  std::string test;
  size_t bug_line = 0;                    // in the source's lines
};

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

Task make_task(const Family& fam, const std::string& name, const std::vector<Args>& cases) {
  Task t;
  t.name = name;
  t.source_path = "lib/" + name + ".sh";
  t.test_path = "tests/test_" + name + ".sh";
  t.test_command = "sh " + t.test_path;
  t.buggy = {"#!/bin/sh", "# " + replace_all(fam.what, "{f}", name)};
  for (const char* line : fam.body) t.buggy.push_back(replace_all(line, "{f}", name));
  t.bug_line = 2 + fam.bug_line;
  t.fixed = t.buggy;
  t.fixed[t.bug_line] = fam.fixed;
  t.test = "#!/bin/sh\n# Tests of " + name + " (" + t.source_path + "): each check prints ok or FAIL; any FAIL exits 1.\n"
           ". ./" + t.source_path + "\nstatus=0\ncheck() {\n  want=$1\n  shift\n  got=$(\"$@\")\n"
           "  if [ \"$got\" = \"$want\" ]; then\n    echo \"ok: $*\"\n  else\n"
           "    echo \"FAIL: $* printed '$got', expected '$want'\"\n    status=1\n  fi\n}\n";
  for (const Args& a : cases) {
    t.test += "check '" + fam.expected(a) + "' " + name;
    for (const auto& x : a) t.test += " '" + x + "'";
    t.test += "\n";
  }
  t.test += "exit $status\n";
  return t;
}

// The fix as a git-style unified diff with three lines of context.
std::string reference_patch(const Task& t) {
  const size_t n = t.buggy.size(), from = t.bug_line >= 3 ? t.bug_line - 3 : 0, to = std::min(n, t.bug_line + 4);
  const std::string range = std::to_string(from + 1) + "," + std::to_string(to - from);
  std::string d = "--- a/" + t.source_path + "\n+++ b/" + t.source_path + "\n@@ -" + range + " +" + range + " @@\n";
  for (size_t i = from; i < to; ++i) {
    if (i == t.bug_line) d += "-" + t.buggy[i] + "\n+" + t.fixed[i] + "\n";
    else d += " " + t.buggy[i] + "\n";
  }
  return d;
}

// Exit status of the task's test command on the given source (0: the tests pass).
int run_tests(const fs::path& scratch, const Task& t, const std::vector<std::string>& source) {
  fs::remove_all(scratch);
  fs::create_directories(scratch / "lib");
  fs::create_directories(scratch / "tests");
  std::ofstream(scratch / t.source_path) << joined(source);
  std::ofstream(scratch / t.test_path) << t.test;
  const std::string cmd = "cd '" + scratch.string() + "' && " + t.test_command + " >/dev/null 2>&1";
  const int rc = std::system(cmd.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

Json run_tool() {
  return {{"type", "function"},
          {"function",
           {{"name", "run"},
            {"description", "Run a shell command in the repository's folder and return what it prints."},
            {"parameters",
             {{"type", "object"},
              {"properties", {{"command", {{"type", "string"}, {"description", "The command, run with /bin/sh -c."}}}}},
              {"required", Json::array({"command"})}}}}}};
}

Json record(const Task& t, const Family& fam, bool multi_turn) {
  const std::string fence_src = t.source_path + ":\n```sh\n" + joined(t.buggy) + "```\n";
  const std::string reply = "Reply with the fix as a unified diff in a ```diff block.";
  std::string q;
  if (!multi_turn) {
    q = "Fix the bug in this shell repository so that its tests pass. Do not change the tests.\n\n" + fence_src + "\n" +
        t.test_path + ":\n```sh\n" + t.test + "```\n\nThe tests run with: " + t.test_command + "\n" + reply;
  } else {
    q = "Fix the bug in this shell repository (files: " + t.source_path + ", " + t.test_path +
        ") so that its tests pass. Do not change the tests. The tests run with: " + t.test_command +
        "\nYou may run shell commands in the repository with the run tool before answering.\n\n" + fence_src + "\n" + reply;
  }
  Json r;
  r["prompt"] = Json::array({Json{{"role", "user"}, {"content", q}}});
  if (multi_turn) r["tools"] = Json::array({run_tool()});
  r["expected_answer"] = reference_patch(t);
  r["environment"] = "code_execution";
  r["task"] = multi_turn ? "swe2" : "swe1";
  r["bug"] = fam.kind;
  r["files"] = {{t.source_path, joined(t.buggy)}, {t.test_path, t.test}};
  r["test_command"] = t.test_command;
  r["protected"] = Json::array({"tests"});
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_swe_tasks OUT_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path scratch = out / ("scratch-" + std::to_string(getpid()));
  std::ofstream swe1(out / "swe1.jsonl"), swe2(out / "swe2.jsonl");
  if (!swe1 || !swe2) {
    std::cerr << "make_swe_tasks: cannot write in " << out << "\n";
    return 1;
  }
  int64_t written = 0, replaced = 0;
  std::set<std::string> seen;
  const auto& fams = swe::families();
  for (size_t fi = 0; fi < fams.size(); ++fi) {
    const Family& fam = fams[fi];
    for (int v = 0; v < kVariantsPerFamily; ++v) {
      bool done = false;
      for (int attempt = 0; attempt < kTriesPerVariant && !done; ++attempt) {
        uint64_t h = splitmix64((uint64_t(fi) << 40) ^ (uint64_t(v) << 8) ^ uint64_t(attempt));
        const std::string name = fam.names[h % fam.names.size()];
        std::vector<Args> cases;
        for (int c = 0; c < kCasesPerTask; ++c) {
          h = splitmix64(h);
          Args a = fam.args(h);
          if (std::find(cases.begin(), cases.end(), a) == cases.end()) cases.push_back(a);
        }
        Task t = make_task(fam, name, cases);
        if (!seen.insert(t.test).second) continue;  // the same repository again: next hash
        if (run_tests(scratch, t, t.buggy) == 0) {  // the cases miss the bug
          ++replaced;
          continue;
        }
        if (run_tests(scratch, t, t.fixed) != 0) {
          std::cerr << "make_swe_tasks: family " << fi << " (" << fam.kind << "): the fixed " << t.source_path
                    << " fails its own tests:\n" << joined(t.fixed) << t.test;
          fs::remove_all(scratch);
          return 1;
        }
        swe1 << record(t, fam, false).dump() << "\n";
        swe2 << record(t, fam, true).dump() << "\n";
        ++written;
        done = true;
      }
    }
  }
  fs::remove_all(scratch);
  swe1.close();
  swe2.close();
  if (!swe1 || !swe2) {
    std::cerr << "make_swe_tasks: writing in " << out << " failed\n";
    return 1;
  }
  std::cout << written << " repositories (" << fams.size() << " bug families; " << replaced
            << " case sets that missed the bug redrawn) in swe1.jsonl and swe2.jsonl\n";
  return 0;
}
