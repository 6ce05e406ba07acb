#include "nemokit/build/user_db.hpp"

#include <fstream>
#include <optional>
#include <sstream>

#include "nemokit/build/dockerfile.hpp"
#include "nemokit/build/rootfs_path.hpp"

namespace nemokit::build {
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

std::optional<unsigned long> number(const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoul(s);
}

}  // namespace

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
        if (r[0] == user || (number(user) && r[2] == user)) {
            name = r[0];
            u.uid = uid_t(std::stoul(r[2]));
            u.gid = gid_t(std::stoul(r[3]));
            u.home = r[5].empty() ? "/" : r[5];
            found = true;
            break;
        }
    }
    if (!found) {
        auto n = number(user);
        if (!n) throw BuildError("unable to find user " + user + ": no matching entries in /etc/passwd");
        u.uid = uid_t(*n);
        u.gid = 0;
    }
    if (!group.empty()) {
        bool gfound = false;
        for (auto& r : groups)
            if (r.size() >= 3 && (r[0] == group || (number(group) && r[2] == group))) {
                u.gid = gid_t(std::stoul(r[2]));
                gfound = true;
                break;
            }
        if (!gfound) {
            auto n = number(group);
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
                if (member == name) u.groups.push_back(gid_t(std::stoul(r[2])));
        }
    return u;
}

}  // namespace nemokit::build
