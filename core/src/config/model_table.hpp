#pragma once

#include <toml++/toml.h>

#include <string>

#include "exec/job_shape.hpp"

namespace nemokit {

// A recipe whose [model] table defines an architecture (the keys of a NemotronH config.json, as
// the pretraining stage's configs do) has it checked when the plan is made, so `--dry-run` and
// every submission refuse a bad model before a job folder or an allocation exists, with the key
// named. A [model] table that names a checkpoint instead (init_from) is the stage's to read.
// Throws UserError. `where` names the config in messages.
void check_model_table(const toml::table& config, const std::string& where);

// The memory one rank may use, and where that figure comes from; bytes 0: not known.
struct MemoryBudget {
  long double bytes = 0;
  std::string source;
};

// A rank's budget: the job's gpu_memory (profile, [run] or run.gpu_memory=...); else, for a run
// on this machine (`here`), this machine's memory over its ranks; else Slurm's mem per node over
// its tasks. A dry run plans, perhaps for a cluster: it passes here = false.
MemoryBudget memory_budget(const JobShape& shape, bool here);

// The memory plan (runtime/run/memory_plan.hpp) of a recipe that defines its architecture, for
// the job's layout ([parallel] dp and zero, the ranks of `shape`, train.micro_batch_size and
// seq_length): one "# memory per rank ..." line, or "" for a recipe whose model is a
// checkpoint. Throws UserError, with the figures, when a rank needs more than `budget`.
std::string check_memory_plan(const toml::table& config, const std::string& where, const JobShape& shape,
                              const MemoryBudget& budget);

}  // namespace nemokit
