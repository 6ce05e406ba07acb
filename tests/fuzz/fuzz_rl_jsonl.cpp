// RL task records (JSONL): the input is one task file, read as the RL stage reads its splits
// (read_tasks: file:line on a bad line) and prepared as its data prep does (check_task on every
// record, the split by hash, media paths, the artifact written atomically).
#include "fuzz_support.hpp"

#include "prep/rl_data_prep.hpp"

#include <fstream>
#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const fs::path dir = nemokit::fuzz::scratch_dir();
  const fs::path file = dir / "tasks.jsonl";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << input;
  nemokit::fuzz::expect_only<std::invalid_argument>(input, [&] {
    for (const auto& record : nemokit::rl::read_tasks(file)) nemokit::rl::check_task(record, file.string());
  });
  nemokit::rl::RlPrepConfig config;
  config.inputs = {file};
  config.output = dir / "out";
  std::ostringstream log;
  nemokit::fuzz::expect_only<std::exception>(input, [&] { (void)nemokit::rl::run_rl_data_prep(config, config.output, log); });
  return 0;
}
