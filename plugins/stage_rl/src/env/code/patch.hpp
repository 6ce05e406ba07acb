#pragma once
// Unified diffs from model responses, applied to an in-memory copy of a repository, so that no
// path a response names ever reaches the file system before it has been checked here.
//
// Accepted (README.md in src/env): the last ```diff or ```patch fenced block of the response,
// else the last fenced block holding "--- " and "+++ " lines, else the raw response from its
// first "diff --git " or "--- " line on. Headers "--- a/x" / "+++ b/x" (git style, the a/ b/
// stripped) or "--- x" / "+++ x"; /dev/null for new and deleted files; git's "new file mode",
// "deleted file mode", "old mode"/"new mode" (the executable bit), "rename from"/"rename to".
// Hunks may sit at another line than their header says (the nearest match is used), but their
// context must match exactly. Refused: absolute paths, ".." components, paths through or onto a
// symlink, symlinks (mode 120000), binary patches, quoted paths.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::rl::code {

struct PatchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct File {
  std::string content;
  bool executable = false;
  std::string symlink;  // not empty: the file is a symlink to this target (only from task folders)
};
using Files = std::map<std::string, File>;  // repository-relative path -> file

struct Hunk {
  size_t old_start = 0, old_count = 0, new_start = 0, new_count = 0;
  std::vector<std::string> old_lines, new_lines;
  bool old_ends_without_newline = false, new_ends_without_newline = false;
};

struct FilePatch {
  std::string old_path, new_path;  // "" for /dev/null
  std::optional<bool> new_executable;
  std::vector<Hunk> hunks;
};

// A repository path made canonical ("./a//b" -> "a/b"); throws PatchError for absolute paths,
// ".." components, NUL or control bytes, and empty paths.
std::string clean_repo_path(std::string_view path);

std::optional<std::string> extract_patch(std::string_view response);
std::vector<FilePatch> parse_patch(std::string_view text);
// Applies every file patch or none (throws PatchError naming the file and hunk).
void apply_patch(Files& files, const std::vector<FilePatch>& patch);

}  // namespace nemokit::rl::code
