// The command line as a user types it.
#include "cli/args.hpp"
#include "run_cli.hpp"
#include "util/error.hpp"
#include "util/suggest.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "support/files.hpp"

using nemokit::test::read_file;

namespace fs = std::filesystem;
using nemokit::test::run_cli;

TEST(Cli, DryRunPrintsResolvedConfigWithOverride) {
  auto r = run_cli("run nano3 sft -c tiny --dry-run train.lr=1e-4");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("lr = 0.0001"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pack_size = 512"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# plan: local executor"), std::string::npos) << r.out;
  // Global options and overrides may come anywhere after the command.
  auto r2 = run_cli("run train.lr=1e-4 -d nano3 -c tiny sft");
  EXPECT_EQ(r2.rc, 0) << r2.err;
  EXPECT_EQ(r.out, r2.out);
}

TEST(Cli, DryRunChangesNothing) {
  fs::path dir = nemokit::test::temp_folder("dry");
  auto r = run_cli("run super3 rl swe1 -c tiny -d", "", dir.string());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Cli, BadOverrideNamesTheKey) {
  auto r = run_cli("run nano3 sft -c tiny --dry-run train.lr=abc");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("train.lr"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, RunAndBatchTogetherIsAnError) {
  auto r = run_cli("run nano3 sft --run a --batch b");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--run and --batch"), std::string::npos) << r.err;
}

TEST(Cli, FailedStageKeepsItsJobFolder) {
  fs::path jobs = nemokit::test::temp_folder("jobs-failed");
  auto r = run_cli("run nano3 sft -c tiny train.max_steps=3 model.init_from=/nonexistent/model", "NEMOKIT_JOB_ROOT=" + jobs.string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("model.init_from"), std::string::npos) << r.err;
  ASSERT_EQ(std::distance(fs::directory_iterator(jobs), fs::directory_iterator()), 1);
  fs::path job = fs::directory_iterator(jobs)->path();
  EXPECT_NE(nemokit::test::read_file(job / "config.toml").find("max_steps = 3"), std::string::npos);
  auto meta = nlohmann::json::parse(nemokit::test::read_file(job / "job.json"));
  EXPECT_EQ(meta["state"], "FAILED");
  EXPECT_EQ(meta["family"], "nano3");
}

TEST(Cli, SubstagesAndUnknownsAreExplained) {
  auto r = run_cli("run super3 rl -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("needs a substage: one of rlvr, swe1, swe2, rlhf"), std::string::npos) << r.err;
  r = run_cli("run nano4 sft -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no plugin serves \"nano4 sft\""), std::string::npos) << r.err;
  r = run_cli("frobnicate");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("unknown command"), std::string::npos) << r.err;
  r = run_cli("build --frob x");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("unknown option --frob"), std::string::npos) << r.err;
}

TEST(Cli, NearestNamesAreCloseOnlyAndNearestFirst) {
  using nemokit::closest_names;
  std::vector<std::string> commands = {"run", "data", "build", "pipe", "recipes", "profiles", "plugins"};
  EXPECT_EQ(closest_names("recipies", commands), (std::vector<std::string>{"recipes"}));
  EXPECT_EQ(closest_names("rnu", commands), (std::vector<std::string>{"run"}));     // two letters swapped
  EXPECT_EQ(closest_names("PIPE", commands), (std::vector<std::string>{"pipe"}));   // case ignored
  EXPECT_EQ(closest_names("plugin", commands), (std::vector<std::string>{"plugins"}));
  EXPECT_TRUE(closest_names("frobnicate", commands).empty());
  EXPECT_TRUE(closest_names("x", {"ab", "cd"}).empty());  // a short word is not near every short word
  EXPECT_EQ(closest_names("swe3", {"rlvr", "swe1", "swe2", "rlhf"}), (std::vector<std::string>{"swe1", "swe2"}));
  EXPECT_EQ(closest_names("train.lrr", {"train.steps", "train.lr", "train.lrr2"}), (std::vector<std::string>{"train.lr", "train.lrr2"}));
  EXPECT_EQ(nemokit::did_you_mean("swe3", {"swe1", "swe2"}), "; did you mean 'swe1' or 'swe2'?");
  EXPECT_EQ(nemokit::did_you_mean("zzz", {"swe1"}), "");
}

TEST(Cli, MisspeltCommandGetsASuggestion) {
  auto r = run_cli("recipies");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("unknown command \"recipies\" (see nemokit --help); did you mean 'recipes'?"), std::string::npos) << r.err;
  r = run_cli("build --contxt x");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("did you mean '--context'"), std::string::npos) << r.err;
}

TEST(Cli, MisspeltFamilyGetsASuggestion) {
  auto r = run_cli("run nano4 sft -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no plugin serves \"nano4 sft\" (known: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'nano3 sft'?"), std::string::npos) << r.err;
  r = run_cli("pipe supr3 -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("did you mean 'super3'?"), std::string::npos) << r.err;
}

TEST(Cli, MisspeltStageAndSubstageGetASuggestion) {
  auto r = run_cli("run nano3 stf -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no plugin serves \"nano3 stf\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'nano3 sft'?"), std::string::npos) << r.err;
  r = run_cli("run super3 rl swe3 -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("did you mean 'super3 rl swe1' or 'super3 rl swe2'?"), std::string::npos) << r.err;
}

TEST(Cli, MisspeltKeyAndConfigGetASuggestion) {
  auto r = run_cli("run nano3 sft -c tiny --dry-run train.lrr=1e-4");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no key \"train.lrr\" in the config (write +train.lrr=1e-4 to add one); did you mean 'train.lr'"),
            std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c tiny --dry-run trian.lr=1e-4");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("did you mean 'train.lr'"), std::string::npos) << r.err;
  r = run_cli("run nano3 sft -c tinny --dry-run");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("it ships: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'tiny'?"), std::string::npos) << r.err;
}

TEST(Cli, RecipesShowEveryTripleWithPluginImageAndConfigs) {
  auto r = run_cli("recipes");
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* t : {"nano3 pretrain", "super3 pretrain", "nano3 sft", "nano3 rl", "super3 sft", "super3 rl rlvr", "super3 rl swe1",
                        "super3 rl swe2", "super3 rl rlhf"})
    EXPECT_NE(r.out.find(t), std::string::npos) << t;
  // CAN: every stage prepares data and runs; these ship their image; nano3 rl is no link of the
  // nano3 pipe (pretrain -> sft), omni3's RL sub-stages are.
  EXPECT_NE(r.out.find("nano3 rl                stage_rl        nano3-rl        data prep, run, image         default, tiny"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("omni3 rl vision         stage_rl        omni3-rl        data prep, run, image, pipe   default, tiny"),
            std::string::npos) << r.out;
}

TEST(Cli, HelpHasPanelsAndVersionIsInstant) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.rc, 0);
  for (const char* panel : {"Commands", "Global options", "Overrides", "Examples"})
    EXPECT_NE(r.out.find(std::string("╭─ ") + panel), std::string::npos) << panel;
  auto v = run_cli("--version");
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("nemokit 0."), std::string::npos);
  auto h = run_cli("build --help");
  EXPECT_NE(h.out.find("--no-cache"), std::string::npos) << h.out;
}

// --platform reaches the builder's request as given: the builder knows the platforms and names
// an unknown one (tests/build).
TEST(Cli, BuildPassesThePlatformToTheBuilder) {
  auto r = run_cli("build nano3-sft --platform linux/arm64 --dry-run");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("\"platform\": \"linux/arm64\""), std::string::npos) << r.out;
  r = run_cli("build nano3-sft --dry-run");
  EXPECT_EQ(r.out.find("\"platform\""), std::string::npos) << r.out;  // the builder's default: this machine's
}

TEST(Cli, CompletionOffersStagesAndImages) {
  auto r = run_cli("__complete run super3 rl");
  EXPECT_EQ(r.out, "rlhf\nrlvr\nswe1\nswe2\n");  // sorted
  r = run_cli("__complete build");
  EXPECT_NE(r.out.find("omni3-sft\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nemokit-base\n"), std::string::npos) << r.out;
  r = run_cli("__complete");
  EXPECT_NE(r.out.find("recipes\n"), std::string::npos) << r.out;
}

// The completion script as bash runs it: options are those the command takes, nothing more.
static std::string bash_complete(const std::string& line) {
  const std::string bin_dir = nemokit::test::nemokit_binary().parent_path().string();
  const std::string script = "PATH='" + bin_dir + "':$PATH; source '" NEMOKIT_SOURCE_DIR "/packaging/nemokit.bash'; " +
                             "COMP_WORDS=(" + line + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nemokit; " +
                             "printf '%s\\n' \"${COMPREPLY[@]}\" | sort";
  auto r = nemokit::test::run({"/bin/bash", "-c", script}, {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(Cli, CompletionOffersOnlyTheOptionsACommandTakes) {
  auto r = run_cli("__complete --options build");
  EXPECT_NE(r.out.find("--no-cache\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--run\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--config\n"), std::string::npos) << r.out;  // build takes no -c
  EXPECT_EQ(run_cli("__complete --options jobs").out, "--help\n--version\n");
  EXPECT_EQ(bash_complete("nemokit build --"), run_cli("__complete --options build").out);
  EXPECT_EQ(bash_complete("nemokit jobs --"), "--help\n--version\n");
  EXPECT_EQ(bash_complete("nemokit run --d"), "--dry-run\n");
  EXPECT_EQ(bash_complete("nemokit --ver"), "--version\n");
  EXPECT_EQ(bash_complete("nemokit run super3 rl rl"), "rlhf\nrlvr\n");
  // A plugin command's words come from its manifest; --platform takes the two cluster platforms.
  EXPECT_EQ(bash_complete("nemokit image ''"), "convert\ninspect\nls\npush\n");
  EXPECT_EQ(bash_complete("nemokit build --platform linux/"), "linux/amd64\nlinux/arm64\n");
}

TEST(Cli, ArgsParserRecognisesOverrides) {
  using nemokit::cli::looks_like_override;
  EXPECT_TRUE(looks_like_override("train.lr=1"));
  EXPECT_TRUE(looks_like_override("+a.b-c=x=y"));
  EXPECT_FALSE(looks_like_override("--x=1"));
  EXPECT_FALSE(looks_like_override("path/to=1"));
  EXPECT_FALSE(looks_like_override("nano3"));
  EXPECT_FALSE(looks_like_override("a..b=1"));
  EXPECT_FALSE(looks_like_override("a.=1"));
  EXPECT_FALSE(looks_like_override("1a=1"));
  EXPECT_FALSE(looks_like_override("+=1"));
  EXPECT_TRUE(looks_like_override("_a.1="));
}

// Arguments of any length are classified without recursion (a 30 KB word once overflowed the
// stack inside std::regex and crashed every command).
TEST(Cli, LongArgumentsNeitherCrashNorHang) {
  using nemokit::cli::looks_like_override;
  std::string name(1 << 20, 'a');
  EXPECT_FALSE(looks_like_override(name));
  EXPECT_TRUE(looks_like_override(name + "=" + name));
  EXPECT_TRUE(looks_like_override("a." + name + "=1"));
  EXPECT_FALSE(looks_like_override(name + "/=1"));
  auto r = run_cli("run nano3 pretrain " + std::string(60000, 'x'));
  EXPECT_LT(r.rc, 128) << r.err;
  EXPECT_NE(r.rc, 0);
  r = run_cli("run nano3 pretrain -d -c tiny train.x" + std::string(60000, 'y') + "=1");
  EXPECT_LT(r.rc, 128) << r.err;
  EXPECT_NE(r.err.find("train.x"), std::string::npos) << r.err.substr(0, 300);
}
