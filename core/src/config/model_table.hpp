#pragma once

#include <toml++/toml.h>

#include <string>

namespace nemokit {

// A recipe whose [model] table defines an architecture (the keys of a NemotronH config.json, as
// the pretraining stage's configs do) has it checked when the plan is made, so `--dry-run` and
// every submission refuse a bad model before a job folder or an allocation exists, with the key
// named. A [model] table that names a checkpoint instead (init_from) is the stage's to read.
// Throws UserError. `where` names the config in messages.
void check_model_table(const toml::table& config, const std::string& where);

// For a run on this machine: the same architecture must also fit this machine's memory
// (NemotronHConfig::check_fits_in_memory), refused before the job folder exists. Plans for a
// cluster skip it: a login node submits models far larger than itself.
void check_model_fits_here(const toml::table& config, const std::string& where);

}  // namespace nemokit
