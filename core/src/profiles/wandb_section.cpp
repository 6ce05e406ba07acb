#include "profiles/wandb_section.hpp"

#include "config/config.hpp"
#include "exec/shell_quote.hpp"
#include "util/error.hpp"
#include "util/read_file.hpp"

#include <toml++/toml.h>

namespace nemokit {
namespace fs = std::filesystem;

namespace {
// A word as typed: bare when the shell reads it as it is, else quoted.
std::string word(const std::string& w) {
  const bool plain = !w.empty() && w.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+-") == std::string::npos;
  return plain ? w : shell_quote(w);
}
}  // namespace

std::optional<WandbSection> read_wandb_section(const fs::path& env_toml) {
  toml::table doc;
  try {
    doc = toml::parse(read_file(env_toml), env_toml.string());
  } catch (const toml::parse_error& e) {
    throw UserError(env_toml.string() + ":" + std::to_string(e.source().begin.line) + ":" +
                    std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
  const toml::node* node = doc.get("wandb");
  if (!node) return std::nullopt;
  auto where = [&](const toml::node& n) { return env_toml.string() + ":" + std::to_string(n.source().begin.line); };
  if (!node->is_table()) throw UserError(where(*node) + ": [wandb] must be a table (project = \"...\", entity = \"...\")");
  toml::table section = *node->as_table();
  for (auto&& [key, val] : section) {
    const std::string k(key.str());
    if (k != "project" && k != "entity")
      throw UserError(where(val) + ": [wandb]: unknown key \"" + k + "\" (known: project, entity)");
    if (!val.is_string()) throw UserError(where(val) + ": [wandb]: key \"" + k + "\" must be a string");
  }
  interpolate_env(section, env_toml.string() + " [wandb]");
  WandbSection w;
  w.file = env_toml;
  w.project = section["project"].value_or(std::string());
  w.entity = section["entity"].value_or(std::string());
  if (w.project.empty())
    throw UserError(where(*node) + ": [wandb] needs project = \"...\" (the W&B project the runs upload to)");
  return w;
}

std::string wandb_sync_command(const WandbSection& w, const fs::path& log_dir) {
  std::string cmd = "wandb sync --sync-tensorboard --project " + word(w.project);
  if (!w.entity.empty()) cmd += " --entity " + word(w.entity);
  return cmd + " " + word(log_dir.string());
}

std::string run_logs_note(const std::optional<WandbSection>& w, const fs::path& log_dir) {
  std::string note = "nemokit: TensorBoard logs in " + log_dir.string() + " (tensorboard --logdir " + word(log_dir.string()) + ")\n";
  if (w)
    note += "nemokit: [wandb] of " + w->file.string() + " (project " + w->project +
            (w->entity.empty() ? "" : ", entity " + w->entity) + "): upload this run with\n  " + wandb_sync_command(*w, log_dir) + "\n";
  return note;
}

}  // namespace nemokit
