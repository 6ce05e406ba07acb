#pragma once

#include "cli/args.hpp"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::cli {

using Rows = std::vector<std::pair<std::string, std::string>>;

// A titled, boxed panel of two-column rows, as the Nemotron CLI draws its help.
void print_panel(std::ostream& out, const std::string& title, const Rows& rows);

void print_main_help(std::ostream& out, const std::vector<CommandSpec>& commands);
void print_command_help(std::ostream& out, const CommandSpec& spec);

}  // namespace nemokit::cli
