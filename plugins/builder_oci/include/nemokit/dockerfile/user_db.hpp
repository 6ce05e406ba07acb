#pragma once
// USER and --chown values resolved against the image's own /etc/passwd and
// /etc/group, as Docker does (never the host's).
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups from /etc/group
  std::string home = "/";
};

// "name", "uid", "name:group", "uid:gid" inside the root filesystem `root`.
// Throws BuildError naming the user or group that does not exist.
ResolvedUser resolve_user(const std::filesystem::path& root, const std::string& spec);

// What USER can check before the image's files are known: a numeric user or group is a valid
// id. Throws BuildError naming the id.
void check_user_spec(const std::string& spec);

}  // namespace nemokit::dockerfile
