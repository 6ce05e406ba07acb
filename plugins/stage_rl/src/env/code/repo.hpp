#pragma once
// The repository of a code task: {"files": {"path": "content" | {"content": ..., "executable":
// true}}} or {"repo": "/a/folder"} (read whole; symlinks kept as symlinks, never followed).

#include "env/code/patch.hpp"

#include <nlohmann/json.hpp>

namespace nemokit::rl::code {

constexpr size_t kMaxRepoBytes = 64u << 20;
constexpr size_t kMaxRepoFiles = 20000;

// Throws std::invalid_argument naming the task key (or the folder's file) that is wrong.
Files load_repo(const nlohmann::json& task);

}  // namespace nemokit::rl::code
