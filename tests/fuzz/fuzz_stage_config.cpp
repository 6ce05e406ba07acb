// A user's stage config as `-c FILE k=v ...` loads it: the input is the config (YAML when it
// starts with '#yaml', else TOML), then optionally a line "%%" and one override per line.
// The config goes through a file because load_stage_config reads files (and their `defaults`).
#include "fuzz_support.hpp"

#include "config/config.hpp"
#include "util/error.hpp"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n%%\n");
  const std::string config = input.substr(0, split);
  std::vector<std::string> overrides;
  if (split != std::string::npos) {
    std::string rest = input.substr(split + 4);
    for (size_t start = 0; start <= rest.size();) {
      size_t end = rest.find('\n', start);
      if (end == std::string::npos) end = rest.size();
      overrides.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  const bool yaml = config.starts_with("#yaml");
  const auto file = nemokit::fuzz::scratch_dir() / (yaml ? "config.yaml" : "config.toml");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << config;

  nemokit::StageEntry stage;
  stage.family = "nano3";
  stage.stage = "pretrain";
  stage.tables = {"model", "train", "data", "run", "parallel", "checkpoint"};
  nemokit::fuzz::expect_only<nemokit::UserError>(input, [&] {
    auto resolved = nemokit::load_stage_config(stage, file.string());
    nemokit::apply_overrides(resolved.table, overrides);
    nemokit::check_config_tables(stage, resolved.table, file.string());
    nemokit::interpolate_env(resolved.table, file.string());
    (void)nemokit::toml_to_json(resolved.table).dump();
    (void)nemokit::to_toml_text(resolved.table);
  });
  return 0;
}
