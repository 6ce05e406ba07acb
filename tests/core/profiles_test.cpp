// env.toml profiles: where the file is found, extends with cycles, key and type errors with the
// file and line, ${env:...}, and secrets that never reach the screen.
#include "profiles/profiles.hpp"
#include "run_cli.hpp"
#include "util/error.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace nemokit;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}
fs::path write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p;
}

const char* kEnvToml = R"([wandb]
project = "not a profile"

[base]
executor = "slurm"
account = "acct"
partition = "batch"
time = "04:00:00"
mounts = ["/lustre:/lustre"]
env_vars = { HF_HOME = "/cache/hf", HF_TOKEN = "hf_secret_value", WANDB_API_KEY = "wandb-secret" }

[big]
extends = "base"
nodes = 2
gpus_per_node = 8
ntasks_per_node = 8
build_cache_dir = "${env:NEMOKIT_TEST_CACHE,/tmp/cache}"

[local]
executor = "local"
)";
}  // namespace

TEST(Profiles, ExtendsAndInterpolation) {
  fs::path dir = test::temp_folder("prof");
  ::setenv("NEMOKIT_TEST_CACHE", "/scratch/cache", 1);
  ProfileSet set = ProfileSet::load(write(dir / "env.toml", kEnvToml));
  EXPECT_EQ(set.names(), (std::vector<std::string>{"base", "big", "local"}));
  const Profile& big = set.get("big");
  EXPECT_EQ(big.chain, (std::vector<std::string>{"big", "base"}));
  EXPECT_EQ(big.executor(), "slurm");
  EXPECT_EQ(big.str("account"), "acct");
  EXPECT_EQ(big.integer("nodes"), 2);
  EXPECT_EQ(big.str("build_cache_dir"), "/scratch/cache");
  EXPECT_EQ(big.strings("mounts"), (std::vector<std::string>{"/lustre:/lustre"}));
  EXPECT_EQ(big.env_vars().at("HF_HOME"), "/cache/hf");
  std::string e = error_of([&] { set.get("nope"); });
  EXPECT_NE(e.find("no profile \"nope\""), std::string::npos) << e;
  EXPECT_NE(e.find("base, big, local"), std::string::npos) << e;
}

TEST(Profiles, ErrorsNameFileLineAndKey) {
  fs::path dir = test::temp_folder("prof-err");
  auto f = write(dir / "env.toml", "[a]\naccount = \"x\"\nnodez = 2\n");
  std::string e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find(f.string() + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key \"nodez\""), std::string::npos) << e;

  write(f, "[a]\n\nnodes = \"two\"\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find(f.string() + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("\"nodes\" must be an integer"), std::string::npos) << e;

  write(f, "[a]\nmounts = [\"/x:/x\", 3]\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find("\"mounts\" must be a list of strings"), std::string::npos) << e;

  write(f, "[a]\nextends = \"b\"\n[b]\nextends = \"c\"\n[c]\nextends = \"a\"\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find("extends cycle"), std::string::npos) << e;

  write(f, "[a]\nextends = \"ghost\"\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find(f.string() + ":2"), std::string::npos) << e;
  EXPECT_NE(e.find("\"ghost\""), std::string::npos) << e;

  write(f, "executor = \"slurm\"\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find("must be a [profile] table"), std::string::npos) << e;

  write(f, "[a\n");
  e = error_of([&] { ProfileSet::load(f); });
  EXPECT_NE(e.find(f.string() + ":1:"), std::string::npos) << e;
}

TEST(Profiles, LocatedByEnvThenWalkingUpThenHome) {
  fs::path root = test::temp_folder("prof-find");
  write(root / "proj" / "env.toml", "[up]\nnodes = 1\n");
  fs::create_directories(root / "proj" / "a" / "b");
  write(root / "home" / ".config" / "nemokit" / "env.toml", "[home]\nnodes = 1\n");
  write(root / "other.toml", "[explicit]\nnodes = 1\n");
  ::setenv("HOME", (root / "home").c_str(), 1);
  ::unsetenv("NEMOKIT_ENV");
  EXPECT_EQ(ProfileSet::locate(root / "proj" / "a" / "b"), root / "proj" / "env.toml");
  EXPECT_EQ(ProfileSet::locate(root), root / "home" / ".config" / "nemokit" / "env.toml");
  ::setenv("NEMOKIT_ENV", (root / "other.toml").c_str(), 1);
  EXPECT_EQ(ProfileSet::locate(root / "proj"), root / "other.toml");
  ::setenv("NEMOKIT_ENV", (root / "missing.toml").c_str(), 1);
  EXPECT_THROW(ProfileSet::locate(root), UserError);
  ::unsetenv("NEMOKIT_ENV");
}

TEST(Profiles, CommandListsResolvedValuesAndHidesSecrets) {
  fs::path dir = test::temp_folder("prof-cli");
  write(dir / "env.toml", kEnvToml);
  auto r = test::run_cli("profiles", "NEMOKIT_TEST_CACHE=/scratch/c", dir.string());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[big]  # extends base"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/scratch/c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HF_HOME = \"/cache/hf\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hf_secret_value"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("wandb-secret"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HF_TOKEN = \"********\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("[wandb]"), std::string::npos) << r.out;
  EXPECT_TRUE(is_secret_name("MY_api_key"));
  EXPECT_TRUE(is_secret_name("DB_PASSWORD"));
  EXPECT_FALSE(is_secret_name("HF_HOME"));
}

TEST(Profiles, MisspeltProfileGetsASuggestion) {
  fs::path dir = test::temp_folder("prof-typo");
  write(dir / "env.toml", kEnvToml);
  auto r = test::run_cli("run nano3 sft -c tiny --dry-run --run lcoal", "", dir.string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no profile \"lcoal\" (profiles: base, big, local); did you mean 'local'?"), std::string::npos) << r.err;
  write(dir / "env.toml", "[local]\nexecuter = \"local\"\n");
  r = test::run_cli("profiles", "", dir.string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("unknown key \"executer\"; did you mean 'executor'?"), std::string::npos) << r.err;
}

// Commands that plugins serve get the selected profile's build_cache_dir: `image ls` lists
// that folder's containers, not the default cache.
TEST(Profiles, PluginCommandsSeeTheProfileBuildCacheDir) {
  fs::path dir = test::temp_folder("prof-cache");
  fs::create_directories(dir / "cache" / "containers");
  write(dir / "cache" / "containers" / "only-here.sqsh", "not a squashfs");
  write(dir / "env.toml", "[site]\nexecutor = \"local\"\nbuild_cache_dir = \"" + (dir / "cache").string() + "\"\n");
  auto with = test::run_cli("-r site image ls", "HOME=" + (dir / "home").string(), dir.string());
  EXPECT_EQ(with.rc, 0) << with.err;
  EXPECT_NE(with.out.find("only-here"), std::string::npos) << with.out;
  auto without = test::run_cli("image ls", "HOME=" + (dir / "home").string(), dir.string());
  EXPECT_EQ(without.rc, 0) << without.err;
  EXPECT_EQ(without.out.find("only-here"), std::string::npos) << without.out;
}
