#include "cli/stage_help.hpp"

#include "cli/help.hpp"
#include "config/config.hpp"
#include "exec/job_shape.hpp"

#include <charconv>

namespace nemokit::cli {

namespace {

std::string type_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "int";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "bool";
    case toml::node_type::array: return "list";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: return "time";
    default: return "table";
  }
}

// Every leaf key of the config as "table.key  type = value", in the order to_toml_text writes.
void key_rows(const toml::table& t, const std::string& prefix, Rows& rows) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (const toml::table* sub = v.as_table()) {
      key_rows(*sub, key + ".", rows);
      continue;
    }
    std::string text;
    if (auto d = v.value_exact<double>()) {
      char buf[32];
      text.assign(buf, std::to_chars(buf, buf + sizeof buf, *d).ptr);  // shortest: 0.9, not 0.90000000000000002
    } else {
      toml::table one;
      one.insert(k.str(), v);
      text = to_toml_text(one);
      text = text.substr(text.find('=') + 2);  // "key = value" -> "value"
    }
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    rows.emplace_back(key, type_of(v) + " = " + text);
  }
}

}  // namespace

void print_stage_help(std::ostream& out, Context& ctx) {
  const ParsedArgs& a = ctx.args;
  std::vector<std::string> words = a.positionals;
  if (a.command == "data") {
    if (words.empty() || words[0] != "prep") return;
    words.erase(words.begin());
  }
  if (words.size() < 2 || words.size() > 3) return;
  const StageEntry& stage = ctx.registry().stage(words[0], words[1], words.size() == 3 ? words[2] : "");

  const std::string picked = a.config.value_or(stage.configs.count("default") ? "default" : "");
  Rows about = {{"stage", stage.triple() + ": " + stage.description}, {"plugin", stage.plugin->name}};
  if (!stage.image.empty()) about.emplace_back("image", stage.image + " (nemokit build " + stage.image + ")");
  print_panel(out, "Stage", about);

  Rows configs;
  for (const auto& [name, resource] : stage.configs)
    configs.emplace_back(name + (name == picked ? " *" : ""), stage.plugin->name + ":" + resource);
  configs.emplace_back("PATH.toml", "your own file; `defaults = [\"tiny\"]` in it inherits from a shipped one");
  print_panel(out, "Configs (-c/--config; * the one used)", configs);

  Rows profiles;
  for (const auto& name : ctx.profiles().names()) {
    const Profile& p = ctx.profiles().get(name);
    profiles.emplace_back(name, p.executor() + " (" + p.file.string() + ")");
  }
  if (profiles.empty()) profiles.emplace_back("(none)", "no env.toml found: runs stay on this machine");
  print_panel(out, "Profiles (-r/--run, -b/--batch)", profiles);

  if (picked.empty()) return;
  ResolvedConfig config = load_stage_config(stage, picked);
  Rows keys;
  key_rows(config.table, "", keys);
  std::string execution;
  for (const auto& k : execution_keys()) execution += (execution.empty() ? "" : ", ") + k;
  keys.emplace_back("run.*", "any execution key may be set, present or not: " + execution);
  print_panel(out, "Keys of " + picked + " (override with key=value)", keys);
}

}  // namespace nemokit::cli
