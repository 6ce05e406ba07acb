#pragma once
// Paths inside a root filesystem that is not ours: symlinks are followed as
// the container would see them (absolute targets start again at the root, ".."
// stops at the root), so no path from an image or a Dockerfile leads outside.
#include <filesystem>
#include <string>

namespace nemokit::dockerfile {

// The host path for `path` inside `root`. All symlinks on the way are
// followed; the last component too when `follow_last`. Components that do not
// exist are kept as they are.
std::filesystem::path resolve_in_root(const std::filesystem::path& root, const std::string& path, bool follow_last);

// `mkdir -p path` inside root; new folders are 0755 and owned by uid:gid.
// Returns the host path.
std::filesystem::path mkdir_in_root(const std::filesystem::path& root, const std::string& path, unsigned uid = 0,
                                    unsigned gid = 0);

// Lexically normalizes a path that must stay inside its root: "a/../b" -> "b",
// "/x/./y" -> "x/y". Returns false when it climbs above the root.
bool clean_relative(const std::string& path, std::string& out);

}  // namespace nemokit::dockerfile
