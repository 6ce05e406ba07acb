#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit {

// What Slurm says about one job.
struct SlurmJobState {
  std::string state;    // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...; "" when Slurm no longer knows it
  int exit_code = -1;   // the batch script's code (128+N for signal N) once the job has ended
  int restarts = 0;
  std::string reason;

  bool ended() const;   // a final state (a requeued job is not ended)
};

// `sbatch --parsable [extra...] SCRIPT`; returns the job id. Throws std::runtime_error with
// sbatch's own message when it refuses the job.
std::string sbatch_submit(const std::filesystem::path& script, const std::vector<std::string>& extra_args);

// squeue while the job is pending or running, then scontrol show job (while Slurm still holds
// it, MinJobAge), then sacct (the accounting or job completion log).
SlurmJobState slurm_job_state(const std::string& job_id);

// scancel [--signal=SIG] [--batch] ID. Throws std::runtime_error with scancel's message.
void slurm_cancel(const std::string& job_id, const std::string& signal = "", bool batch_only = false);

// "1:0" -> 1, "0:15" -> 143.
int parse_slurm_exit_code(const std::string& text);

// True for ids sbatch hands out (digits, optionally "_N" array suffix); refuses anything else so
// no user word reaches a Slurm command as an option.
bool is_slurm_job_id(const std::string& id);

}  // namespace nemokit
