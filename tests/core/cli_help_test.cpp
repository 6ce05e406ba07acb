// The help surface as a user walks it: every command `nemokit --help` lists (the plugins' too)
// answers `--help` with exit status 0 and a usage line naming it, and so does every subcommand
// its usage names. Read from the help itself, so a command added later is covered, and a
// command whose help fails can no longer be listed.
#include "run_cli.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {
using nemokit::test::run_cli;

// The command names of the "Commands" panel: the first word of each row that is not the
// continuation of a wrapped one.
std::vector<std::string> listed_commands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream in(help);
  std::string line;
  bool inside = false;
  const std::string bar = "│ ";
  while (std::getline(in, line)) {
    if (line.starts_with("╭─ Commands")) { inside = true; continue; }
    if (!inside) continue;
    if (line.starts_with("╰")) break;
    if (!line.starts_with(bar) || line.size() <= bar.size() || line[bar.size()] == ' ') continue;
    names.push_back(line.substr(bar.size(), line.find(' ', bar.size()) - bar.size()));
  }
  return names;
}

// The subcommands a command's help names: a lowercase word right after "nemokit CMD " (upper
// case words and brackets are placeholders: FAMILY, [info NAME]).
std::set<std::string> named_subcommands(const std::string& help, const std::string& command) {
  std::set<std::string> subs;
  const std::string lead = "nemokit " + command + " ";
  for (size_t at = help.find(lead); at != std::string::npos; at = help.find(lead, at + 1)) {
    size_t b = at + lead.size(), e = b;
    while (e < help.size() && (std::islower(static_cast<unsigned char>(help[e])) || help[e] == '-')) ++e;
    if (e > b && (e == help.size() || help[e] == ' ' || help[e] == '\n')) subs.insert(help.substr(b, e - b));
  }
  return subs;
}

bool has_usage_line(const std::string& text, const std::string& words) {
  return text.find("Usage: nemokit " + words) != std::string::npos || text.find("usage: nemokit " + words) != std::string::npos;
}
}  // namespace

TEST(CliHelp, EveryListedCommandAndSubcommandAnswersHelp) {
  auto top = run_cli("--help");
  ASSERT_EQ(top.rc, 0) << top.err;
  std::vector<std::string> commands = listed_commands(top.out);
  // The built-in commands and the builder plugin's are all there (the parse is not empty).
  for (const char* c : {"run", "data", "build", "pipe", "model", "tokenizer", "plugins", "recipes", "profiles", "jobs", "logs",
                        "cancel", "probe", "image", "exec"})
    EXPECT_NE(std::find(commands.begin(), commands.end(), c), commands.end()) << c << " is missing from\n" << top.out;
  size_t subcommands = 0;
  for (const auto& c : commands) {
    auto h = run_cli(c + " --help");
    EXPECT_EQ(h.rc, 0) << "nemokit " << c << " --help\n" << h.out << h.err;
    EXPECT_TRUE(has_usage_line(h.out, c)) << "nemokit " << c << " --help has no usage line:\n" << h.out << h.err;
    for (const auto& s : named_subcommands(h.out, c)) {
      ++subcommands;
      auto sh = run_cli(c + " " + s + " --help");
      EXPECT_EQ(sh.rc, 0) << "nemokit " << c << " " << s << " --help\n" << sh.out << sh.err;
      EXPECT_TRUE(has_usage_line(sh.out, c) && sh.out.find("nemokit " + c + " " + s) != std::string::npos)
          << "nemokit " << c << " " << s << " --help has no usage of it:\n" << sh.out << sh.err;
    }
  }
  // model (6), tokenizer (3), image (3), data prep: the subcommand parse finds them.
  EXPECT_GE(subcommands, 13u);
}

// A command's help lists only the global options it takes, and one it would ignore is an error.
TEST(CliHelp, CommandsTakeOnlyTheGlobalOptionsTheirHelpLists) {
  auto jobs = run_cli("jobs --help");
  EXPECT_EQ(jobs.out.find("--config"), std::string::npos) << jobs.out;
  EXPECT_EQ(jobs.out.find("--dry-run"), std::string::npos) << jobs.out;
  auto bad = run_cli("jobs -c tiny");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("`nemokit jobs` takes no --config"), std::string::npos) << bad.err;
  auto recipes = run_cli("recipes --dry-run");
  EXPECT_EQ(recipes.rc, 2);
  EXPECT_NE(recipes.err.find("takes no --dry-run"), std::string::npos) << recipes.err;
  auto run = run_cli("run --help");
  for (const char* o : {"--config", "--run", "--batch", "--dry-run"}) EXPECT_NE(run.out.find(o), std::string::npos) << o;
  auto build = run_cli("build --help");
  EXPECT_EQ(build.out.find("--config"), std::string::npos) << build.out;
  EXPECT_NE(build.out.find("--dry-run"), std::string::npos) << build.out;
}
