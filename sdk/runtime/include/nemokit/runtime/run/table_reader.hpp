#pragma once
// Typed reads of one config table (a TOML table as JSON) that name the key on every error:
//   TableReader t(config["train"], "train");
//   t.integer("max_steps", o.max_steps, 1);   // "train.max_steps: expected an integer"
//   t.no_unknown_keys();                        // "train.maxsteps: unknown key"
// Absent keys leave the output as it was (the default).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace nemokit::rt {

class TableReader {
 public:
  // `table` must outlive the reader; a non-object table is an error naming `prefix`.
  TableReader(const nlohmann::json& table, std::string prefix);

  const nlohmann::json* get(const char* key);  // marks the key as known
  void integer(const char* key, int64_t& out, int64_t min);
  void number(const char* key, double& out);
  void string(const char* key, std::string& out);
  void boolean(const char* key, bool& out);
  void strings(const char* key, std::vector<std::string>& out);  // a string or an array of strings
  [[noreturn]] void fail(const char* key, const std::string& what) const;
  void no_unknown_keys() const;

 private:
  const nlohmann::json& table_;
  std::string prefix_;
  std::set<std::string> seen_;
};

// The [checkpoint] table every training stage shares: dir (with ~ expanded), resume, keep (>= 1).
// Absent table or keys leave the outputs as they are.
void read_checkpoint_table(const nlohmann::json& config, std::filesystem::path& dir, bool& resume, int64_t& keep);

}  // namespace nemokit::rt
