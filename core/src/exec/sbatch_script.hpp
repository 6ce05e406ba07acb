#pragma once

#include "exec/job_shape.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nemokit {

// Running each task inside an image with pyxis (srun --container-*).
struct PyxisContainer {
  std::string image;                 // an absolute .sqsh path (pyxis reads only / or . paths as files) or a registry ref
  std::vector<std::string> mounts;   // "SRC:DST[:FLAGS]"
  std::string workdir;
};

// Everything one sbatch script holds. Values are data: the renderer quotes each of them, so
// nothing from a profile or config can run in the script. The one exception is setup_lines,
// which a profile writes as shell on purpose (module loads and the like).
struct SlurmScript {
  JobShape shape;
  std::filesystem::path job_dir;          // absolute; logs go to <job_dir>/logs/slurm-%j.{out,err}
  std::string title;                      // a comment line: "nemokit run nano3 sft"
  std::vector<std::string> setup_lines;
  std::map<std::string, std::string> env; // exported before srun; never secrets
  std::vector<std::string> secret_names;  // exported by sourcing <job_dir>/secrets.env
  bool use_container = false;
  PyxisContainer container;
  std::vector<std::string> task_argv;     // what every task runs
};

// The sbatch script. It exports the rendezvous (MASTER_ADDR: the address of the first host of
// the node list; MASTER_PORT from the job id) and the resume plumbing (NEMOKIT_JOB_DIR,
// NEMOKIT_RESTART_COUNT, NEMOKIT_RESUMED, NEMOKIT_PREEMPT_SIGNAL=USR1), starts one task per GPU
// with srun, and on SIGUSR1 (sent shape.signal_seconds before the time limit) passes the signal
// to the tasks so the stage checkpoints, then requeues the job. Throws UserError for a value
// that cannot be carried safely (a control character in an #SBATCH value, a bad variable name,
// a mount holding a comma).
std::string render_sbatch_script(const SlurmScript& s);

// `export NAME='value'` lines for <job_dir>/secrets.env (written 0600 by the caller).
std::string render_secrets_file(const std::map<std::string, std::string>& secrets);

// The variable names the tasks get from nemokit (listed in --container-env so the image's
// environment cannot replace them).
std::vector<std::string> nemokit_task_env_names();

}  // namespace nemokit
