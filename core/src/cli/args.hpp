#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace nemokit::cli {

class Context;

// What one command accepts besides the global options, and what runs it.
struct CommandSpec {
  std::string name;
  std::string summary;
  std::string usage;                              // after "nemokit "
  std::map<std::string, std::string> value_opts;  // option -> help; takes a value (--tag NAME)
  std::map<std::string, std::string> flags;       // option -> help; no value (--no-cache)
  bool raw = false;                               // hand every word after the name to the command untouched
  bool overrides = false;                         // accepts key.sub=value overrides
  // The global options it takes besides --help and --version, by letter: c (--config), r (--run),
  // b (--batch), d (--dry-run), s (--stage). Its help lists only these; any other is an error. A raw command
  // parses its own words, so this only covers the options written before its name.
  std::string globals;
  bool takes(char global) const { return globals.find(global) != std::string::npos; }
  // The built-in command's entry point; none for a plugin's command, which is forwarded to the
  // plugin that declares it.
  int (*handler)(Context&) = nullptr;
};

struct ParsedArgs {
  std::string command;                                      // "" when none was given
  std::vector<std::string> positionals;                     // words after the command
  std::map<std::string, std::vector<std::string>> options;  // command options, in order given
  std::vector<std::string> raw;                             // raw commands: the words after the name
  std::vector<std::string> overrides;                       // key.sub=value and +key=value, in order
  std::optional<std::string> config, run_profile, batch_profile;
  bool dry_run = false, help = false, version = false, stage = false;

  bool flag(const std::string& f) const { return options.count(f) > 0; }
  std::optional<std::string> value(const std::string& o) const;
  std::vector<std::string> values(const std::string& o) const;
};

// Global options (-c/--config, -r/--run, -b/--batch, -d/--dry-run, -h/--help, --version) and
// overrides may stand anywhere after the command. Throws UserError on a bad command line.
// The long options a command takes, global ones included (every global one for no command).
std::vector<std::string> long_options(const CommandSpec* spec);

ParsedArgs parse_args(const std::vector<std::string>& argv, const std::vector<CommandSpec>& commands);

bool looks_like_override(const std::string& word);

// An override in the recipes' spelling made ours: `run.env.nodes=4` (and `+run.env...`) is
// `run.nodes=4`; any other word is returned unchanged.
std::string recipe_override(const std::string& word);

}  // namespace nemokit::cli
