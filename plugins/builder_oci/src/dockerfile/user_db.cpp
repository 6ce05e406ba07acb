#include "nemokit/dockerfile/user_db.hpp"

#include <fstream>
#include <optional>
#include <sstream>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/rootfs_path.hpp"

namespace nemokit::dockerfile {
namespace {

std::vector<std::vector<std::string>> read_db(const std::filesystem::path& root, const char* file) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(resolve_in_root(root, file, true));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string part;
    while (std::getline(ss, part, ':')) f.push_back(part);
    if (!line.empty() && line.back() == ':') f.push_back("");
    rows.push_back(f);
  }
  return rows;
}

constexpr unsigned long kMaxId = 4294967294;  // (uid_t)-1 means "no change" to chown

// A user or group id written in decimal; nullopt for a name. `what` says whose ("user id").
std::optional<unsigned long> number(const std::string& s, const std::string& what) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  if (s.size() > 10 || std::stoul(s) > kMaxId)
    throw BuildError(what + " " + s + " is out of range (at most " + std::to_string(kMaxId) + ")");
  return std::stoul(s);
}

// Field `index` of a /etc/passwd or /etc/group line of the image, which must be an id.
unsigned long id_field(const std::vector<std::string>& row, size_t index, const char* file) {
  const std::string& v = row[index];
  bool ok = !v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string::npos && std::stoul(v) <= kMaxId;
  if (!ok)
    throw BuildError(std::string(file) + ": the entry for '" + row[0] + "' has id '" + v + "', not a number up to " +
                     std::to_string(kMaxId));
  return std::stoul(v);
}

}  // namespace

void check_user_spec(const std::string& spec) {
  size_t colon = spec.find(':');
  number(spec.substr(0, colon), "user id");
  if (colon != std::string::npos) number(spec.substr(colon + 1), "group id");
}

ResolvedUser resolve_user(const std::filesystem::path& root, const std::string& spec) {
  ResolvedUser u;
  std::string user = spec, group;
  if (auto c = spec.find(':'); c != std::string::npos) {
    user = spec.substr(0, c);
    group = spec.substr(c + 1);
  }
  if (user.empty()) throw BuildError("user '" + spec + "': empty user name");
  auto passwd = read_db(root, "/etc/passwd");
  auto groups = read_db(root, "/etc/group");
  std::string name;
  bool found = false;
  for (auto& r : passwd) {
    if (r.size() < 7) continue;
    if (r[0] == user || (number(user, "user id") && r[2] == user)) {
      name = r[0];
      u.uid = uid_t(id_field(r, 2, "/etc/passwd"));
      u.gid = gid_t(id_field(r, 3, "/etc/passwd"));
      u.home = r[5].empty() ? "/" : r[5];
      found = true;
      break;
    }
  }
  if (!found) {
    auto n = number(user, "user id");
    // root is uid 0 even in an image without /etc/passwd (a scratch stage), as in Docker.
    if (!n && user == "root") n = 0;
    if (!n) throw BuildError("unable to find user " + user + ": no matching entries in /etc/passwd");
    u.uid = uid_t(*n);
    u.gid = 0;
  }
  if (!group.empty()) {
    bool gfound = false;
    for (auto& r : groups)
      if (r.size() >= 3 && (r[0] == group || (number(group, "group id") && r[2] == group))) {
        u.gid = gid_t(id_field(r, 2, "/etc/group"));
        gfound = true;
        break;
      }
    if (!gfound) {
      auto n = number(group, "group id");
      if (!n && group == "root") n = 0;
      if (!n) throw BuildError("unable to find group " + group + ": no matching entries in /etc/group");
      u.gid = gid_t(*n);
    }
  }
  u.groups.push_back(u.gid);
  if (!name.empty() && group.empty())
    for (auto& r : groups) {
      if (r.size() < 4) continue;
      std::stringstream ss(r[3]);
      std::string member;
      while (std::getline(ss, member, ','))
        if (member == name) u.groups.push_back(gid_t(id_field(r, 2, "/etc/group")));
    }
  return u;
}

}  // namespace nemokit::dockerfile
