#pragma once

#include "profiles/profiles.hpp"

#include <toml++/toml.h>

#include <set>
#include <string>
#include <vector>

namespace nemokit {

// How big a job is and where it goes: what an sbatch script asks for, and how many local ranks.
struct JobShape {
  int nodes = 1;
  int tasks_per_node = 1;   // one task (rank) per GPU
  int gpus_per_node = 0;
  int cpus_per_task = 0;    // 0: not asked for
  int signal_seconds = 120; // SIGUSR1 this long before the time limit, to checkpoint and requeue
  bool exclusive = false;
  std::string time, mem, account, partition, job_name;
  // The memory one GPU has ("80G", "141G"): the memory plan refuses a layout whose rank needs
  // more. Empty: not known (the plan is printed, not checked against it).
  std::string gpu_memory;
  // srun's --mpi plugin ("pmix"): the ranks of a multi-task job form one MPI world through it,
  // as CPU training's collectives need. Empty: the cluster's MpiDefault.
  std::string mpi;
  // The recipes name the container in the stage config ([run] container_image, mounts); a
  // profile's or the command line's value wins as for the other keys. Empty: the profile's or
  // the stage image's.
  std::string container_image;
  std::vector<std::string> mounts;

  int world_size() const { return nodes * tasks_per_node; }
};

// Where a value comes from, strongest first: a `run.KEY=...` override on the command line, the
// profile (the user's cluster and the size they chose), the stage config's [run] table (the
// recipe's defaults), built-in defaults. Tasks per node: ntasks_per_node, else nproc_per_node,
// else one per GPU (at least one). The partition is run_partition for attached runs (--run),
// batch_partition for detached ones (--batch), partition otherwise. `config` is the whole
// resolved stage config (may be empty). Throws UserError naming the key for a wrong type or a
// value below 1 (0 for GPUs), and for an unknown [run] key (check_run_table).
JobShape resolve_job_shape(const Profile* profile, const toml::table& config, const std::set<std::string>& overridden,
                           bool detached, const std::string& default_job_name);

// How many ranks a local run starts: nproc_per_node (or ntasks_per_node) from the command line,
// the profile or the config; else gpus_per_node from the command line or the profile; else the
// config's gpus_per_node capped at the GPUs this machine shows (a recipe written for 8-GPU nodes
// still runs on a smaller machine); at least 1. nodes is ignored: a local run is one machine.
int local_rank_count(const Profile* profile, const toml::table& config, const std::set<std::string>& overridden,
                     int visible_gpus);

// The keys a stage config's [run] table may hold (nodes, ntasks_per_node, partition, time,
// container_image, ...): what resolve_job_shape reads.
const std::vector<std::string>& execution_keys();

// Throws UserError for a [run] key that is not an execution key, naming it and the closest
// ones: a misspelt `run.partiton` would otherwise be carried along and never used.
void check_run_table(const toml::table& config);

// The `run.*` keys that overrides on the command line set ("run.nodes=2" -> "nodes").
std::set<std::string> overridden_run_keys(const std::vector<std::string>& overrides);

}  // namespace nemokit
