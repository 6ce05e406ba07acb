// Recipe configs: built-in names, user files, `defaults` inheritance and cycles, typed overrides,
// ${env:...} interpolation. Errors must name the file, line or key.
#include "config/config.hpp"
#include "config/yaml_config.hpp"
#include "run_cli.hpp"
#include "util/error.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace nemokit;

namespace {
const PluginRegistry& registry() {
  static PluginRegistry r = PluginRegistry::discover({fs::path(NEMOKIT_BINARY_DIR) / "lib" / "nemokit" / "plugins"});
  return r;
}
const StageEntry& sft() { return registry().stage("nano3", "sft", ""); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

fs::path write(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}
}  // namespace

TEST(Config, BuiltInTinyInheritsDefault) {
  ResolvedConfig c = load_stage_config(sft(), "tiny");
  ASSERT_EQ(c.chain.size(), 2u);
  EXPECT_NE(c.chain[0].find("configs/nano3/default.toml"), std::string::npos);
  EXPECT_EQ(c.table["data"]["pack_size"].value<int64_t>(), 512);      // tiny's own
  EXPECT_EQ(c.table["data"]["packer"].value<std::string>(), "first_fit_shuffle");  // from default
  EXPECT_EQ(c.table["lora"]["rank"].value<int64_t>(), 16);
}

TEST(Config, UnknownNameListsWhatTheStageShips) {
  std::string e = error_of([] { load_stage_config(sft(), "huge"); });
  EXPECT_NE(e.find("\"huge\""), std::string::npos) << e;
  EXPECT_NE(e.find("default, tiny"), std::string::npos) << e;
}

TEST(Config, UserFileExtendsBuiltInConfig) {
  fs::path dir = test::temp_folder("cfg-user");
  fs::path f = write(dir, "mine.toml", "defaults = [\"tiny\"]\n[train]\nmax_steps = 7\n");
  ResolvedConfig c = load_stage_config(sft(), f.string());
  EXPECT_EQ(c.table["train"]["max_steps"].value<int64_t>(), 7);
  EXPECT_EQ(c.table["data"]["pack_size"].value<int64_t>(), 512);
  EXPECT_EQ(c.chain.back(), f.string());
}

TEST(Config, InheritanceCycleIsDetected) {
  fs::path dir = test::temp_folder("cfg-cycle");
  write(dir, "a.toml", "defaults = [\"b.toml\"]\nx = 1\n");
  write(dir, "b.toml", "defaults = [\"c.toml\"]\n");
  write(dir, "c.toml", "defaults = [\"a.toml\"]\n");
  std::string e = error_of([&] { load_stage_config(sft(), (dir / "a.toml").string()); });
  EXPECT_NE(e.find("cycle"), std::string::npos) << e;
  EXPECT_NE(e.find("a.toml -> "), std::string::npos) << e;
  EXPECT_NE(e.find("c.toml -> "), std::string::npos) << e;
}

TEST(Config, SyntaxErrorNamesFileLineAndColumn) {
  fs::path dir = test::temp_folder("cfg-syntax");
  fs::path f = write(dir, "broken.toml", "[train]\nlr = 0.1\nsteps = = 3\n");
  std::string e = error_of([&] { load_stage_config(sft(), f.string()); });
  EXPECT_NE(e.find(f.string() + ":3:"), std::string::npos) << e;
}

TEST(Config, OverridesAreTypeChecked) {
  ResolvedConfig c = load_stage_config(sft(), "tiny");
  apply_overrides(c.table, {"train.lr=1e-4", "train.max_steps=9", "lora.enabled=true", "data.chat_template=plain",
                            "lora.targets=[\"q_proj\"]", "train.lr=2"});
  EXPECT_DOUBLE_EQ(*c.table["train"]["lr"].value<double>(), 2.0);  // an integer literal for a float key is a float
  EXPECT_TRUE(c.table["train"]["lr"].is_floating_point());
  EXPECT_EQ(c.table["train"]["max_steps"].value<int64_t>(), 9);
  EXPECT_EQ(c.table["lora"]["enabled"].value<bool>(), true);
  EXPECT_EQ(c.table["data"]["chat_template"].value<std::string>(), "plain");
  EXPECT_EQ(c.table["lora"]["targets"].as_array()->size(), 1u);

  std::string e = error_of([&] { apply_overrides(c.table, {"train.lr=abc"}); });
  EXPECT_NE(e.find("train.lr is a float"), std::string::npos) << e;
  EXPECT_NE(e.find("\"abc\""), std::string::npos) << e;
  e = error_of([&] { apply_overrides(c.table, {"data.pack_size=1.5"}); });
  EXPECT_NE(e.find("data.pack_size is an integer"), std::string::npos) << e;
  EXPECT_NE(e.find("configs/nano3/tiny.toml:"), std::string::npos) << e;  // where the key came from
  e = error_of([&] { apply_overrides(c.table, {"lora.enabled=yes"}); });
  EXPECT_NE(e.find("lora.enabled is a boolean"), std::string::npos) << e;
}

TEST(Config, NewKeysNeedThePlusForm) {
  ResolvedConfig c = load_stage_config(sft(), "tiny");
  std::string e = error_of([&] { apply_overrides(c.table, {"train.lrr=1e-4"}); });
  EXPECT_NE(e.find("no key \"train.lrr\""), std::string::npos) << e;
  EXPECT_NE(e.find("+train.lrr="), std::string::npos) << e;
  apply_overrides(c.table, {"+train.lrr=1e-4", "+extra.name=hello", "+extra.n=3"});
  EXPECT_DOUBLE_EQ(*c.table["train"]["lrr"].value<double>(), 1e-4);
  EXPECT_EQ(c.table["extra"]["name"].value<std::string>(), "hello");
  EXPECT_EQ(c.table["extra"]["n"].value<int64_t>(), 3);
  e = error_of([&] { apply_overrides(c.table, {"+train.lr=1"}); });
  EXPECT_NE(e.find("already exists"), std::string::npos) << e;
  e = error_of([&] { apply_overrides(c.table, {"train.lr.x=1"}); });
  EXPECT_NE(e.find("\"train.lr\" is a float, not a table"), std::string::npos) << e;
}

TEST(Config, EnvInterpolation) {
  fs::path dir = test::temp_folder("cfg-env");
  fs::path f = write(dir, "env.toml.cfg.toml",
                     "[paths]\nset = \"${env:NEMOKIT_TEST_SET,unused}/x\"\nunset = \"${env:NEMOKIT_TEST_UNSET,fallback}\"\n"
                     "list = [\"a-${env:NEMOKIT_TEST_SET}\"]\n");
  ::setenv("NEMOKIT_TEST_SET", "/data", 1);
  ::unsetenv("NEMOKIT_TEST_UNSET");
  ResolvedConfig c = load_stage_config(sft(), f.string());
  interpolate_env(c.table, f.string());
  EXPECT_EQ(c.table["paths"]["set"].value<std::string>(), "/data/x");
  EXPECT_EQ(c.table["paths"]["unset"].value<std::string>(), "fallback");
  EXPECT_EQ((*c.table["paths"]["list"].as_array())[0].value<std::string>(), "a-/data");

  fs::path g = write(dir, "missing.toml", "[paths]\n\nroot = \"${env:NEMOKIT_TEST_UNSET}\"\n");
  ResolvedConfig d = load_stage_config(sft(), g.string());
  std::string e = error_of([&] { interpolate_env(d.table, g.string()); });
  EXPECT_NE(e.find(g.string() + ":3"), std::string::npos) << e;
  EXPECT_NE(e.find("paths.root"), std::string::npos) << e;
  EXPECT_NE(e.find("NEMOKIT_TEST_UNSET is not set"), std::string::npos) << e;

  // A variable whose bytes are not UTF-8: the config goes on as JSON, so it is refused here,
  // naming the file, line and key (found by fuzz_stage_config).
  ::setenv("NEMOKIT_TEST_SET", "gpu\xfb", 1);
  ResolvedConfig bad = load_stage_config(sft(), f.string());
  e = error_of([&] { interpolate_env(bad.table, f.string()); });
  EXPECT_NE(e.find(f.string() + ":"), std::string::npos) << e;
  EXPECT_NE(e.find("paths.list[0]: the value with its environment variables is not valid UTF-8 at byte 6"), std::string::npos)
      << e;
  ::setenv("NEMOKIT_TEST_SET", "/data", 1);
}

TEST(Config, AnOverrideThatIsNotUtf8IsRefused) {
  ResolvedConfig c = load_stage_config(sft(), "tiny");
  std::string e = error_of([&] { apply_overrides(c.table, {"run.partition=gpu\xfb"}); });
  EXPECT_NE(e.find("override \"run.partition=gpu...\": not valid UTF-8 at byte 18"), std::string::npos) << e;
}

TEST(Config, TomlToJsonKeepsTypes) {
  auto t = toml::parse("a = 1\nb = 2.5\nc = \"s\"\nd = true\ne = [1, 2]\n[f]\ng = 1979-05-27\n");
  auto j = toml_to_json(t);
  EXPECT_TRUE(j["a"].is_number_integer());
  EXPECT_TRUE(j["b"].is_number_float());
  EXPECT_EQ(j["c"], "s");
  EXPECT_EQ(j["d"], true);
  EXPECT_EQ(j["e"].size(), 2u);
  EXPECT_EQ(j["f"]["g"], "1979-05-27");
}

// A YAML scalar's type (integer, float, .inf, ...) is read in one pass: std::regex recursed once
// per character, and a number of 200,000 digits overflowed the stack (found by
// tests/fuzz/fuzz_yaml_config).
TEST(Config, YamlLongNumbersAreTypedWithoutOverflowingTheStack) {
  const std::string digits(200000, '7');
  EXPECT_NE(error_of([&] { yaml_to_toml_text("a: " + digits + "\n", "big.yaml"); }).find("big.yaml:1: integer 777"),
            std::string::npos);
  EXPECT_EQ(yaml_to_toml_text("b: 0." + std::string(200000, '0') + "1e200000\n", "big.yaml").substr(0, 6), "\"b\" = ");
  EXPECT_EQ(yaml_to_toml_text("c: " + std::string(200000, '8') + "x\n", "big.yaml").substr(0, 8), "\"c\" = \"8");
}

TEST(Config, YamlScalarsTakeTheCoreSchemaTypes) {
  EXPECT_EQ(yaml_to_toml_text("a: 0x1F\nb: 0o17\nc: +12\nd: -3\n", "t.yaml"),
            "\"a\" = 31\n\"b\" = 15\n\"c\" = 12\n\"d\" = -3\n");
  EXPECT_EQ(yaml_to_toml_text("a: .5\nb: 1e3\nc: -2.\nd: 1.5E-1\n", "t.yaml"),
            "\"a\" = 0.5\n\"b\" = 1000.0\n\"c\" = -2.0\n\"d\" = 0.15\n");
  EXPECT_EQ(yaml_to_toml_text("a: -.inf\nb: +.Inf\nc: .NaN\nd: TRUE\ne: False\n", "t.yaml"),
            "\"a\" = -inf\n\"b\" = inf\n\"c\" = nan\n\"d\" = true\n\"e\" = false\n");
  EXPECT_EQ(yaml_to_toml_text("a: 1.2.3\nb: 0x\nc: 1e\nd: -.nan\ne: \"12\"\n", "t.yaml"),
            "\"a\" = \"1.2.3\"\n\"b\" = \"0x\"\n\"c\" = \"1e\"\n\"d\" = \"-.nan\"\n\"e\" = \"12\"\n");
  EXPECT_NE(error_of([] { yaml_to_toml_text("a: ~\n", "t.yaml"); }).find("t.yaml:1: a: a null value"), std::string::npos);
}

// yaml-cpp keeps a key given twice; the TOML it became was refused in TOML's words ("cannot
// redefine existing string '"i"i" '", found by tests/fuzz/fuzz_yaml_config).
TEST(Config, YamlKeyGivenTwiceIsRefusedNamingBothLines) {
  EXPECT_NE(error_of([] { yaml_to_toml_text("i: 1\nj: 2\ni: 3\n", "t.yaml"); })
                .find("t.yaml:3: key \"i\" is given twice in one mapping (first on line 1)"),
            std::string::npos);
  EXPECT_NE(error_of([] { yaml_to_toml_text("train:\n  lr: 1\n  lr: 2\n", "t.yaml"); })
                .find("t.yaml:3: key \"lr\" is given twice in one mapping (first on line 2)"),
            std::string::npos);
  EXPECT_NE(error_of([] { yaml_to_toml_text("a: {x: 1, x: 2}\n", "t.yaml"); }).find("t.yaml:1: key \"x\" is given twice"),
            std::string::npos);
}
