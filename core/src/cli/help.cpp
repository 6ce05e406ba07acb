#include "cli/help.hpp"

#include <algorithm>

namespace nemokit::cli {

namespace {
constexpr size_t kWidth = 86;

std::string repeat(const char* s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// Each with the letter a command's CommandSpec::globals names it by ('*': every command).
const std::vector<std::pair<char, std::pair<std::string, std::string>>> kGlobalOptions = {
    {'c', {"-c, --config NAME|PATH", "a config the stage ships (tiny, default) or your TOML file"}},
    {'r', {"-r, --run PROFILE", "run attached on an env.toml profile: stream logs, return its exit code"}},
    {'b', {"-b, --batch PROFILE", "submit detached on an env.toml profile and print the job id"}},
    {'d', {"-d, --dry-run", "print the resolved config and the execution plan; change nothing"}},
    {'s', {"--stage", "make the job folder (config, plan or sbatch script) and start nothing: run it by hand"}},
    {'*', {"-h, --help", "show help (after a command: its usage and the options it takes)"}},
    {'*', {"--version", "print the version"}},
};

Rows global_rows(const CommandSpec* spec) {
  Rows rows;
  for (const auto& [g, row] : kGlobalOptions)
    if (g == '*' || !spec || spec->takes(g)) rows.push_back(row);
  return rows;
}

const Rows kOverrides = {
    {"key.sub=value", "set a config key; the value must fit the type already there"},
    {"+key.sub=value", "add a key the config does not have"},
    {"${env:NAME,default}", "in config and env.toml strings: an environment variable"},
};

const Rows kExamples = {
    {"nemokit run nano3 pretrain -c tiny", "train the tiny model here, on real text"},
    {"nemokit run nano3 sft -c tiny -d train.lr=1e-4", "show the resolved config and plan"},
    {"nemokit run super3 rl rlvr --run MY-CLUSTER", "run attached on a Slurm profile"},
    {"nemokit model eval A B -c tiny", "perplexity, task and chat accuracy of two models side by side"},
    {"nemokit build omni3-sft", "build the stage image into build_cache_dir"},
    {"nemokit recipes", "every family/stage the plugins serve"},
};
}  // namespace

void print_panel(std::ostream& out, const std::string& title, const Rows& rows) {
  size_t left = 0;
  for (const auto& [a, _] : rows) left = std::max(left, a.size());
  left = std::min<size_t>(left, 40);
  const size_t inner = kWidth - 4;
  out << "╭─ " << title << " " << repeat("─", kWidth - 5 - title.size()) << "╮\n";
  for (const auto& [a, b] : rows) {
    std::string line = a + std::string(a.size() < left ? left - a.size() : 0, ' ') + "  " + b;
    // Long rows wrap onto continuation lines aligned with the description column.
    while (!line.empty()) {
      std::string chunk = line.substr(0, inner);
      if (line.size() > inner) {
        size_t cut = chunk.rfind(' ');
        if (cut != std::string::npos && cut > left + 2) chunk = chunk.substr(0, cut);
      }
      out << "│ " << chunk << std::string(inner - chunk.size(), ' ') << " │\n";
      line = line.size() > chunk.size() ? std::string(left + 2, ' ') + line.substr(chunk.size() + (line[chunk.size()] == ' ')) : "";
      if (line.find_first_not_of(' ') == std::string::npos) line.clear();
    }
  }
  out << "╰" << repeat("─", kWidth - 2) << "╯\n";
}

void print_main_help(std::ostream& out, const std::vector<CommandSpec>& commands) {
  out << "\n Usage: nemokit [OPTIONS] COMMAND [ARGS]... [key.sub=value]...\n\n"
      << " Build the stage images, prepare data, and train the Nemotron 3 recipes\n"
      << " (nano3, super3, omni3) here or on a Slurm cluster.\n\n";
  Rows cmds;
  for (const auto& c : commands)
    if (!c.summary.empty()) cmds.emplace_back(c.name, c.summary);
  print_panel(out, "Commands", cmds);
  print_panel(out, "Global options", global_rows(nullptr));
  print_panel(out, "Overrides", kOverrides);
  print_panel(out, "Examples", kExamples);
}

void print_command_help(std::ostream& out, const CommandSpec& spec) {
  out << "\n Usage: nemokit " << spec.usage << "\n\n " << spec.summary << "\n\n";
  if (!spec.value_opts.empty() || !spec.flags.empty()) {
    Rows rows;
    for (const auto& [o, help] : spec.value_opts) rows.emplace_back(o + " VALUE", help);
    for (const auto& [f, help] : spec.flags) rows.emplace_back(f, help);
    print_panel(out, "Options", rows);
  }
  print_panel(out, "Global options", global_rows(&spec));
  if (spec.overrides) print_panel(out, "Overrides", kOverrides);
}

}  // namespace nemokit::cli
