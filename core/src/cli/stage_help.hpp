// `nemokit run FAMILY STAGE [SUBSTAGE] --help` (and `data prep ... --help`): after the command's
// own help, what that stage offers, as the recipes' help panels show it.
#pragma once

#include "cli/context.hpp"

#include <ostream>

namespace nemokit::cli {

// Prints the stage's panels: what it does and its image, the configs it ships (the one -c picks
// marked), the env.toml profiles found, and every key of the picked config with its type and
// value, which is what `key=value` may override. Does nothing when the command's words name no
// stage (plain `nemokit run --help`); throws UserError, with the closest names, for a stage
// that does not exist.
void print_stage_help(std::ostream& out, Context& ctx);

}  // namespace nemokit::cli
