// A recipe user's habits: `nemokit FAMILY STAGE ...` and the other command shapes of the recipes'
// CLI, run.env.KEY overrides, per-stage help, and config tables no stage reads.
#include "run_cli.hpp"

#include <gtest/gtest.h>

using nemokit::test::run_cli;

// Each recipe shape gives exactly what nemokit's own spelling gives.
TEST(RecipeCli, RecipeCommandShapesAreNemokitsOwn) {
  const std::pair<const char*, const char*> same[] = {
      {"nano3 pretrain -c tiny -d", "run nano3 pretrain -c tiny -d"},
      {"omni3 rl vision -c tiny -d train.lr=1e-5", "run omni3 rl vision -c tiny -d train.lr=1e-5"},
      {"-d super3 sft -c tiny", "run super3 sft -c tiny -d"},
      {"nano3 data prep sft -c tiny -d", "data prep nano3 sft -c tiny -d"},
      {"omni3 pipe -c tiny -d", "pipe omni3 -c tiny -d"},
      {"omni3 build rl --dry-run", "build omni3-rl --dry-run"},
      {"nano3 build sft --dry-run", "build nano3-sft --dry-run"},
  };
  for (const auto& [recipe, ours] : same) {
    auto a = run_cli(recipe), b = run_cli(ours);
    EXPECT_EQ(a.rc, 0) << recipe << "\n" << a.err;
    EXPECT_EQ(a.out, b.out) << recipe << " vs " << ours;
    EXPECT_EQ(a.err, b.err) << recipe << " vs " << ours;
  }
}

TEST(RecipeCli, MisspeltFamilyOrStageInTheRecipeShape) {
  auto r = run_cli("nanoo3 pretrain -c tiny -d");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("unknown family \"nanoo3\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'nano3'?"), std::string::npos) << r.err;
  r = run_cli("nano3 build sfd");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("did you mean 'nano3 sft'?"), std::string::npos) << r.err;
  // A misspelt command is still named as a command.
  r = run_cli("recipies");
  EXPECT_NE(r.err.find("did you mean 'recipes'?"), std::string::npos) << r.err;
}

TEST(RecipeCli, ExecutionKeysMaySetWithoutPlusAndRunEnvIsTheirAlias) {
  auto r = run_cli("nano3 pretrain -c tiny -d run.env.nodes=4 run.partition=batch run.env.container_image=nvcr.io/nvidia/nemo:25.11");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("nodes = 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("partition = \"batch\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("container_image = \"nvcr.io/nvidia/nemo:25.11\""), std::string::npos) << r.out;
  r = run_cli("nano3 pretrain -c tiny -d run.env.nodez=4");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("run.nodez is not an execution key; did you mean 'nodes'?"), std::string::npos) << r.err;
}

// `+table.key=...` for a table the stage never reads is refused before anything runs, with the
// tables it does read; so is a table in the user's config file.
TEST(RecipeCli, ATableNoStageReadsIsAnError) {
  auto r = run_cli("run nano3 rl -c tiny -d +evl.max_tasks=5");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("table [evl] (set on the command line) is not read by nano3 rl"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean 'eval'?"), std::string::npos) << r.err;
  r = run_cli("run nano3 pretrain -c tiny -d +eval.max_tasks=5");  // pretrain has no eval table
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("table [eval] (set on the command line) is not read by nano3 pretrain, which reads [model], [data], [train]"),
            std::string::npos) << r.err;

  auto dir = nemokit::test::temp_folder("tables");
  nemokit::test::write_file(dir / "mine.toml", "defaults = [\"tiny\"]\n\n[trian]\nlr = 1e-3\n");
  r = run_cli("run nano3 sft -d -c " + (dir / "mine.toml").string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("table [trian] (" + (dir / "mine.toml").string() + ":3) is not read by nano3 sft"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("did you mean 'train'?"), std::string::npos) << r.err;
  // Every config a stage ships passes.
  for (const char* stage : {"nano3 pretrain", "nano3 sft", "nano3 rl", "super3 rl swe2", "super3 rl rlhf", "omni3 sft",
                            "omni3 rl mpo", "omni3 rl vision"})
    for (const char* config : {"tiny", "default"}) {
      auto ok = run_cli(std::string("run ") + stage + " -d -c " + config);
      EXPECT_EQ(ok.rc, 0) << stage << " " << config << "\n" << ok.err;
    }
}

TEST(RecipeCli, StageHelpListsConfigsProfilesAndKeys) {
  auto dir = nemokit::test::temp_folder("stage-help");
  nemokit::test::write_file(dir / "env.toml", "[my-cluster]\nexecutor = \"slurm\"\nnodes = 2\n");
  auto r = run_cli("run omni3 rl vision -c tiny --help", "NEMOKIT_ENV=" + (dir / "env.toml").string());
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* s : {"Usage: nemokit run FAMILY STAGE", "omni3 rl vision: GRPO on image questions",
                        "omni3-rl (nemokit build omni3-rl)", "tiny *", "stage_rl:configs/omni3/vision-tiny.toml",
                        "default ", "my-cluster", "slurm", "Keys of tiny", "grpo.num_prompts_per_step", "int = 8",
                        "train.lr", "float = 5e-05", "run.*"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  // The recipe shape and data prep get the same panels.
  auto recipe = run_cli("omni3 rl vision -c tiny --help", "NEMOKIT_ENV=" + (dir / "env.toml").string());
  EXPECT_EQ(recipe.out, r.out);
  auto prep = run_cli("data prep nano3 sft --help");
  EXPECT_NE(prep.out.find("Keys of default"), std::string::npos) << prep.out;
  auto bad = run_cli("run nano3 sfd --help");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("did you mean 'nano3 sft'?"), std::string::npos) << bad.err;
}

// A recipe's YAML config gives the same resolved config as the TOML one, and its errors name the
// YAML file's own lines.
TEST(RecipeCli, YamlConfigsLoadLikeTomlAndNameTheirLines) {
  auto dir = nemokit::test::temp_folder("yaml");
  nemokit::test::write_file(dir / "mine.yaml", R"(# as the recipes write them
defaults:
  - tiny
  - _self_

train:
  lr: 3.0e-4
  max_steps: 7
  frozen: [vision_model., "audio_model."]
  schedule: 'cosine'
data:
  name: ${oc.env:NEMOKIT_TEST_NAME,from-yaml}
  pack_size: 256
run: {nodes: 2, time: "01:00:00"}
)");
  nemokit::test::write_file(dir / "mine.toml", R"(# the same in TOML
defaults = ["tiny"]

[train]
lr = 3.0e-4
max_steps = 7
frozen = ["vision_model.", "audio_model."]
schedule = "cosine"
[data]
name = "${env:NEMOKIT_TEST_NAME,from-yaml}"
pack_size = 256
[run]
nodes = 2
time = "01:00:00"
)");
  auto yaml = run_cli("run nano3 sft -d -c " + (dir / "mine.yaml").string());
  auto toml = run_cli("run nano3 sft -d -c " + (dir / "mine.toml").string());
  ASSERT_EQ(yaml.rc, 0) << yaml.err;
  ASSERT_EQ(toml.rc, 0) << toml.err;
  auto body = [](const std::string& out) { return out.substr(out.find("\n\n")); };  // past the "# config:" chain
  EXPECT_EQ(body(yaml.out), body(toml.out));
  EXPECT_NE(yaml.out.find("name = \"from-yaml\""), std::string::npos) << yaml.out;
  EXPECT_NE(yaml.out.find("pack_size = 256"), std::string::npos) << yaml.out;
  auto named = run_cli("run nano3 sft -d -c " + (dir / "mine.yaml").string(), "NEMOKIT_TEST_NAME=mine");
  EXPECT_NE(named.out.find("name = \"mine\""), std::string::npos) << named.out;

  // An override of the wrong type names the YAML line the key came from.
  auto r = run_cli("run nano3 sft -d -c " + (dir / "mine.yaml").string() + " train.max_steps=lots");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("train.max_steps is an integer (" + (dir / "mine.yaml").string() + ":8)"), std::string::npos) << r.err;

  const std::pair<const char*, const char*> bad[] = {
      {"defaults: [tiny]\ntrain:\n  lr: [1, 2\n", "bad.yaml:4:1: end of sequence flow not found"},
      {"defaults: [tiny]\ntrain:\n  lr:\n", "bad.yaml:3: train.lr: a null value"},
      {"- a\n- b\n", "bad.yaml:1: a config must be a mapping"},
      {"defaults: [tiny]\ndata:\n  name: ${oc.envv:X}\n", "bad.yaml:3: data.name: unknown interpolation ${oc.envv:X}"},
  };
  for (const auto& [text, error] : bad) {
    nemokit::test::write_file(dir / "bad.yaml", text);
    r = run_cli("run nano3 sft -d -c " + (dir / "bad.yaml").string());
    EXPECT_EQ(r.rc, 2) << text;
    EXPECT_NE(r.err.find(error), std::string::npos) << text << "\n" << r.err;
  }
}
