#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace nemokit {

// A run's folder: resolved config, plan, logs and job.json (ids and state).
struct JobDir {
  std::filesystem::path path;
  nlohmann::json meta;  // what job.json holds

  // Creates <root>/<UTC time>-<family>-<stage>[-<substage>] (a numeric suffix when taken).
  static JobDir create(const std::filesystem::path& root, const std::string& family, const std::string& stage,
                       const std::string& substage);
  void save() const;  // writes job.json atomically
  void set_state(const std::string& state, int exit_code);
};

// `job_root` from the profile, else $NEMOKIT_JOB_ROOT, else .nemokit/jobs under the current folder.
std::filesystem::path default_job_root();

}  // namespace nemokit
