#pragma once
// The recipes' [wandb] section of env.toml (project, entity). nemokit does not talk to W&B
// itself: runs write TensorBoard event files, and this section names the project and entity of
// the `wandb sync --sync-tensorboard` command that uploads them, which every run prints.

#include <filesystem>
#include <optional>
#include <string>

namespace nemokit {

struct WandbSection {
  std::filesystem::path file;  // the env.toml it came from
  std::string project;         // required: the recipes enable tracking by it
  std::string entity;          // optional: the W&B team or user
};

// The [wandb] section of `env_toml`; nullopt when it has none. UserError naming the file, line
// and key for an unknown key, a value that is not a string, or a section without `project`.
// ${env:NAME,default} is resolved as in profiles.
std::optional<WandbSection> read_wandb_section(const std::filesystem::path& env_toml);

// The command that uploads the event files in `log_dir` to the section's project (and entity).
std::string wandb_sync_command(const WandbSection& w, const std::filesystem::path& log_dir);

// What a run prints about its logs: where TensorBoard finds them and, with a [wandb] section,
// the wandb sync command that uploads them.
std::string run_logs_note(const std::optional<WandbSection>& w, const std::filesystem::path& log_dir);

}  // namespace nemokit
