#include "cli/args.hpp"

#include "util/error.hpp"
#include "util/suggest.hpp"

#include <cctype>

namespace nemokit::cli {

std::optional<std::string> ParsedArgs::value(const std::string& o) const {
  auto it = options.find(o);
  if (it == options.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::values(const std::string& o) const {
  auto it = options.find(o);
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

// `[+]name(.part)*=value`: a name starts with a letter or '_', each dotted part is a non-empty
// run of letters, digits, '_' and '-'. Matched by hand: arguments can be arbitrarily long and
// std::regex recurses once per character.
bool looks_like_override(const std::string& word) {
  size_t eq = word.find('=');
  if (eq == std::string::npos) return false;
  size_t start = !word.empty() && word[0] == '+' ? 1 : 0;
  if (start == eq) return false;
  auto first = static_cast<unsigned char>(word[start]);
  if (!std::isalpha(first) && first != '_') return false;
  bool part_empty = true;
  for (size_t i = start; i < eq; ++i) {
    auto c = static_cast<unsigned char>(word[i]);
    if (c == '.') {
      if (part_empty) return false;
      part_empty = true;
    } else if (std::isalnum(c) || c == '_' || c == '-') {
      part_empty = false;
    } else {
      return false;
    }
  }
  return !part_empty;
}

std::string recipe_override(const std::string& word) {
  // The recipes set the executor's keys as run.env.KEY (nemo_runspec); ours are [run] KEY.
  const size_t start = word.starts_with("+") ? 1 : 0;
  if (word.compare(start, 8, "run.env.") != 0) return word;
  return word.substr(0, start) + "run." + word.substr(start + 8);
}

namespace {
const std::map<std::string, std::string> kGlobalValueOpts = {
    {"-c", "config"}, {"--config", "config"}, {"-r", "run"}, {"--run", "run"}, {"-b", "batch"}, {"--batch", "batch"}};

// The commands a user may type; the hidden "__" ones are for nemokit itself and never suggested.
std::vector<std::string> visible_commands(const std::vector<CommandSpec>& commands) {
  std::vector<std::string> names;
  for (const auto& c : commands)
    if (!c.name.starts_with("__")) names.push_back(c.name);
  return names;
}

}

// The long options a command takes, global ones included. Short ones are left out: every
// one-letter option is one edit from every other, so suggesting them would only be noise.
std::vector<std::string> long_options(const CommandSpec* spec) {
  std::vector<std::string> names = {"--help", "--version"};
  for (const auto& [g, name] : {std::pair{'c', "--config"}, {'r', "--run"}, {'b', "--batch"}, {'d', "--dry-run"}, {'s', "--stage"}})
    if (!spec || spec->takes(g)) names.push_back(name);
  if (spec) {
    for (const auto& [o, _] : spec->value_opts) names.push_back(o);
    for (const auto& [o, _] : spec->flags) names.push_back(o);
  }
  std::erase_if(names, [](const std::string& o) { return !o.starts_with("--"); });
  return names;
}

ParsedArgs parse_args(const std::vector<std::string>& argv, const std::vector<CommandSpec>& commands) {
  ParsedArgs a;
  const CommandSpec* spec = nullptr;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string w = argv[i];
    if (spec && spec->raw) {
      a.raw.push_back(w);
      continue;
    }
    if (w == "--") {  // everything after is positional
      for (++i; i < argv.size(); ++i) a.positionals.push_back(argv[i]);
      break;
    }
    std::string name = w, inline_value;
    bool has_inline = false;
    if (w.starts_with("--") && w.find('=') != std::string::npos) {
      name = w.substr(0, w.find('='));
      inline_value = w.substr(w.find('=') + 1);
      has_inline = true;
    }
    auto take_value = [&](const std::string& opt) -> std::string {
      if (has_inline) return inline_value;
      if (i + 1 >= argv.size()) throw UserError("option " + opt + " needs a value");
      return argv[++i];
    };
    if (auto g = kGlobalValueOpts.find(name); g != kGlobalValueOpts.end()) {
      std::string v = take_value(name);
      if (g->second == "config") a.config = v;
      else if (g->second == "run") a.run_profile = v;
      else a.batch_profile = v;
      continue;
    }
    if (w == "-d" || w == "--dry-run") { a.dry_run = true; continue; }
    if (w == "--stage") { a.stage = true; continue; }
    if (w == "-h" || w == "--help") { a.help = true; continue; }
    if (w == "--version" || (w == "-V" && !spec)) { a.version = true; continue; }
    if (w.starts_with("-") && w.size() > 1) {
      if (spec && spec->value_opts.count(name)) {
        a.options[name].push_back(take_value(name));
        continue;
      }
      if (spec && spec->flags.count(name) && !has_inline) {
        a.options[name].push_back("");
        continue;
      }
      throw UserError("unknown option " + name + (spec ? " for `nemokit " + spec->name + "`" : "") +
                      " (see nemokit " + (spec ? spec->name + " " : "") + "--help)" +
                      (name.starts_with("--") ? did_you_mean(name, long_options(spec)) : ""));
    }
    if (!spec) {
      for (const auto& c : commands)
        if (c.name == w) spec = &c;
      if (!spec) throw UserError("unknown command \"" + w + "\" (see nemokit --help)" + did_you_mean(w, visible_commands(commands)));
      a.command = w;
      continue;
    }
    if (looks_like_override(w)) {
      if (!spec->overrides) throw UserError("`nemokit " + spec->name + "` takes no overrides (got \"" + w + "\")");
      a.overrides.push_back(recipe_override(w));
      continue;
    }
    a.positionals.push_back(w);
  }
  if (a.run_profile && a.batch_profile) throw UserError("--run and --batch cannot be used together: pick attached (--run) or detached (--batch)");
  // A global option the command would ignore is an error, not silence (its help lists the ones
  // it takes). With --help the help is shown instead.
  if (spec && !a.help) {
    const std::pair<char, bool> given[] = {{'c', a.config.has_value()}, {'r', a.run_profile.has_value()},
                                           {'b', a.batch_profile.has_value()}, {'d', a.dry_run}, {'s', a.stage}};
    for (const auto& [g, set] : given)
      if (set && !spec->takes(g)) {
        const char* name = g == 'c' ? "--config" : g == 'r' ? "--run" : g == 'b' ? "--batch" : g == 's' ? "--stage" : "--dry-run";
        throw UserError("`nemokit " + spec->name + "` takes no " + name + " (see nemokit " + spec->name + " --help)");
      }
  }
  return a;
}

}  // namespace nemokit::cli
