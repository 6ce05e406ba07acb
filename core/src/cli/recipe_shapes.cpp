#include "cli/recipe_shapes.hpp"

#include "util/error.hpp"
#include "util/suggest.hpp"

#include <algorithm>

namespace nemokit::cli {

namespace {

bool is_family(const std::string& word, const PluginRegistry& registry) {
  const auto& stages = registry.stages();
  return std::any_of(stages.begin(), stages.end(), [&](const StageEntry& s) { return s.family == word; });
}

// The words at and after `from` that are not options or overrides: FAMILY build STAGE [SUB].
std::vector<size_t> word_positions(const std::vector<std::string>& argv, size_t from) {
  static const std::vector<std::string> takes_value = {"-c", "--config", "-r", "--run", "-b", "--batch"};
  std::vector<size_t> out;
  for (size_t i = from; i < argv.size(); ++i) {
    const std::string& w = argv[i];
    if (w == "--") break;
    if (std::find(takes_value.begin(), takes_value.end(), w) != takes_value.end()) {
      ++i;
      continue;
    }
    if (w.starts_with("-") || w.find('=') != std::string::npos) continue;
    out.push_back(i);
  }
  return out;
}

}  // namespace

std::vector<std::string> from_recipe_shape(const std::vector<std::string>& argv, const PluginRegistry& registry,
                                           const std::vector<std::string>& commands) {
  std::vector<size_t> words = word_positions(argv, 0);
  if (words.empty()) return argv;
  if (!is_family(argv[words[0]], registry)) {
    // A misspelt family ("nanoo3 pretrain") is named as one; a misspelt command is left to
    // the command parser, which suggests commands.
    const std::string& w = argv[words[0]];
    std::vector<std::string> families;
    for (const auto& s : registry.stages())
      if (std::find(families.begin(), families.end(), s.family) == families.end()) families.push_back(s.family);
    if (std::find(commands.begin(), commands.end(), w) == commands.end() && !closest_names(w, families).empty() &&
        closest_names(w, commands).empty())
      throw UserError("unknown family \"" + w + "\" (see nemokit recipes)" + did_you_mean(w, families));
    return argv;
  }
  const size_t at = words[0];
  const std::string family = argv[at];
  std::vector<std::string> out(argv.begin(), argv.begin() + at);
  auto rest_after = [&](size_t i) { out.insert(out.end(), argv.begin() + i + 1, argv.end()); };
  const std::string next = words.size() > 1 ? argv[words[1]] : "";

  if (next == "data" && words.size() > 2 && argv[words[2]] == "prep" && words[1] == at + 1 && words[2] == at + 2) {
    out.insert(out.end(), {"data", "prep", family});
    rest_after(at + 2);
  } else if (next == "pipe" && words[1] == at + 1) {
    out.insert(out.end(), {"pipe", family});
    rest_after(at + 1);
  } else if (next == "model" && words.size() > 2 && argv[words[2]] == "eval" && words[1] == at + 1 && words[2] == at + 2) {
    // FAMILY model eval A [B ...]: the family's eval stage with the models named.
    out.insert(out.end(), {"model", "eval", "--family", family});
    rest_after(at + 2);
  } else if (next == "build" && words[1] == at + 1) {
    // FAMILY build STAGE [SUBSTAGE]: the stage's image, found in the recipe table.
    if (words.size() < 3) throw UserError("usage: nemokit " + family + " build STAGE [SUBSTAGE] (builds the image the stage runs in)");
    const std::string stage = argv[words[2]];
    std::string sub;
    for (const auto& s : registry.stages())
      if (words.size() > 3 && s.family == family && s.stage == stage && s.substage == argv[words[3]]) sub = s.substage;
    const StageEntry* found = nullptr;
    for (const auto& s : registry.stages())
      if (s.family == family && s.stage == stage && (sub.empty() || s.substage == sub)) found = &s;
    if (!found) registry.stage(family, stage, sub);  // throws, naming what the family has
    out.insert(out.end(), {"build", found->image});
    for (size_t i = at + 1; i < argv.size(); ++i)
      if (i != words[1] && i != words[2] && (sub.empty() || i != words[3])) out.push_back(argv[i]);
  } else {
    out.insert(out.end(), {"run", family});
    rest_after(at);
  }
  return out;
}

}  // namespace nemokit::cli
