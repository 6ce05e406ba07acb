#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nemokit {

struct Profile;

// A run's folder: resolved config (config.toml), plan (plan.txt or sbatch.sh), logs/ and
// job.json (ids and state). job.json keys: id, family, stage, substage, command, executor
// ("local" or "slurm"), state, exit_code, created_at, updated_at, host, host_pid, and for Slurm
// jobs slurm_job_id, profile, after (the job it waits for).
struct JobDir {
  std::filesystem::path path;
  nlohmann::json meta;  // what job.json holds

  // Creates <root>/<UTC time>-<family>-<stage>[-<substage>] (a numeric suffix when taken).
  static JobDir create(const std::filesystem::path& root, const std::string& family, const std::string& stage,
                       const std::string& substage);
  // Reads an existing job folder; throws std::runtime_error naming job.json when it is unreadable.
  static JobDir open(const std::filesystem::path& path);
  void save() const;  // writes job.json atomically
  void set_state(const std::string& state, int exit_code);

  std::filesystem::path logs() const { return path / "logs"; }
  std::string id() const { return meta.value("id", path.filename().string()); }
  std::string slurm_job_id() const { return meta.value("slurm_job_id", ""); }
};

// $NEMOKIT_JOB_ROOT, else .nemokit/jobs under the current folder.
std::filesystem::path default_job_root();
// The profile's job_root (a folder every node sees) when it has one, else default_job_root().
std::filesystem::path job_root_for(const Profile* profile);

// The job folders under `roots` (missing roots skipped), oldest first.
std::vector<JobDir> list_jobs(const std::vector<std::filesystem::path>& roots);

// A job named by its folder (a path), its id (the folder's name) or its Slurm job id; the
// newest match wins. nullopt when none matches.
std::optional<JobDir> find_job(const std::vector<std::filesystem::path>& roots, const std::string& ref);

}  // namespace nemokit
