#pragma once
// Finding the job a command names: the folders `nemokit jobs` lists (the default job root and
// every profile's job_root) and a job named by its folder, id or Slurm id.

#include "cli/context.hpp"
#include "exec/job.hpp"

#include <filesystem>
#include <vector>

namespace nemokit::cli {

// The default job root and every profile's job_root: where `jobs` looks.
std::vector<std::filesystem::path> job_roots(Context& ctx);

// The one positional argument as a job; UserError with `usage` when there is not exactly one,
// and naming the reference when no job matches.
JobDir job_from_args(Context& ctx, const char* usage);

}  // namespace nemokit::cli
