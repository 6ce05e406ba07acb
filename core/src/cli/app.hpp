#pragma once

#include "cli/args.hpp"

#include <string>
#include <vector>

namespace nemokit::cli {

// The whole command line program; returns the process exit code. Errors from bad input are one
// line on stderr and exit code 2; failures of the work itself return the work's code (1 if none).
// The built-in commands with their options and handlers (plugins add theirs at run time).
std::vector<CommandSpec> builtin_commands();

int run_app(const std::vector<std::string>& argv);

}  // namespace nemokit::cli
