#pragma once
// RL data prep: task JSONL -> train/val/test JSONL splits with manifest.json and metadata.json
// (a SplitJsonlDataArtifact), as the Nemotron recipe's data prep writes them.
//
// A record is one task: {"prompt": [messages] | "text", "expected_answer": ..., "environment":
// "name" | [names] | {name: weight}, ...any fields the environment reads}. Each record's split is decided by a hash of its
// bytes and the seed, so adding records never moves the others between splits. omni3 tasks carry
// "images" / "videos" / "audios" as the SFT chats do (paths relative to their file's folder);
// the files are copied into OUT/media and the paths rewritten to point there.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace nemokit::rl {

struct RlPrepConfig {
  std::vector<std::filesystem::path> inputs;  // data.inputs: JSONL files
  int64_t split[3] = {98, 1, 1};              // data.split: "98,1,1" (train, val, test weights)
  uint64_t seed = 1234;
  std::string name = "rl-data";
  std::filesystem::path output;               // data.output (default: JOB/data)

  // Reads the [data] table; errors name the key (data.split, data.inputs, ...); `table` is the
  // table's name in errors (the eval stage reads the same keys from [tasks.data]).
  static RlPrepConfig from_json(const nlohmann::json& data, const std::string& table = "data");
  // The stage config's [data] table (required), data.output defaulting to JOB/data.
  static RlPrepConfig from_config(const nlohmann::json& config, const std::filesystem::path& job_dir);
};

// Checks one record; throws std::invalid_argument "<where>: ..." naming the bad key.
void check_task(const nlohmann::json& record, const std::string& where);

// The splits by index: "train", "val", "test".
extern const char* const kSplitNames[3];

// One task of the input files, with the split data prep gives it: a hash of the line's bytes and
// the seed, so a record is in the same split wherever it is read.
struct InputTask {
  nlohmann::json record;
  std::string line;              // the line as the file holds it
  std::filesystem::path file;
  std::string where;             // "file:line"
  int split = 0;                 // 0 train, 1 val, 2 test
};

// Calls `visit` for every task of c.inputs in file order, checked (check_task). Throws
// std::invalid_argument naming the file (cannot open) or file:line (bad JSON or task).
void for_each_input_task(const RlPrepConfig& c, const std::function<void(InputTask&)>& visit);

// Writes `out_dir` atomically; returns the metadata it wrote.
nlohmann::json run_rl_data_prep(const RlPrepConfig& c, const std::filesystem::path& out_dir, std::ostream& log);

// Reads one split file (as written above): the records, in order. Errors name file:line.
std::vector<nlohmann::json> read_tasks(const std::filesystem::path& file);

}  // namespace nemokit::rl
