// /etc/subuid and /etc/subgid as shadow-utils reads them: NAME_OR_ID:START:COUNT, one range a
// line; '#' starts a comment; a user may have several lines.
#include <cstdlib>
#include <fstream>

#include "nemokit/dockerfile/user_namespace.hpp"

namespace nemokit::dockerfile {

std::vector<IdRange> subordinate_ranges(const std::filesystem::path& file, const std::string& name, uint32_t id) {
  std::vector<IdRange> out;
  std::ifstream in(file);
  std::string line;
  auto number = [](const std::string& s, uint32_t& v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10) return false;
    unsigned long long n = std::strtoull(s.c_str(), nullptr, 10);
    if (n > 0xffffffffull) return false;
    v = uint32_t(n);
    return true;
  };
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string who = line.substr(0, a);
    if (who != name && who != std::to_string(id)) continue;
    IdRange r;
    if (!number(line.substr(a + 1, b - a - 1), r.start) || !number(line.substr(b + 1), r.count) || r.count == 0) continue;
    out.push_back(r);
  }
  return out;
}

}  // namespace nemokit::dockerfile
