// Files and folders that appear all at once: written under a temporary name in the same
// folder, flushed to disk, then renamed over the final name.
#pragma once
#include <string>
#include <string_view>

namespace nemokit::rt {

void write_file_atomic(const std::string& path, std::string_view bytes);
void fsync_path(const std::string& path);  // a file or a folder
// Replaces `final_dir` by `tmp_dir` (both in the same parent) with one rename (an exchange
// when final_dir exists), so a reader sees either the old folder or the new one.
void replace_dir_atomic(const std::string& tmp_dir, const std::string& final_dir);

}  // namespace nemokit::rt
