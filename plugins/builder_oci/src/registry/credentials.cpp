#include "credentials.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "nemokit/runtime/run/paths.hpp"

namespace nemokit::registry {

std::filesystem::path default_credentials_file() {
  if (const char* c = std::getenv("ENROOT_CONFIG_PATH"); c && *c) return std::filesystem::path(c) / ".credentials";
  return rt::expand_home("~/.config/enroot/.credentials");
}

std::optional<Credentials> find_credentials(const std::filesystem::path& file, const std::string& host) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (size_t hash = line.find('#'); hash != std::string::npos) line = line.substr(0, hash);
    std::stringstream ss(line);
    std::string t;
    while (ss >> t) tokens.push_back(t);
  }
  std::string bare = host.substr(0, host.find(':'));
  std::optional<Credentials> exact, by_name;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] != "machine" || i + 1 >= tokens.size()) continue;
    std::string machine = tokens[i + 1];
    Credentials c;
    for (size_t j = i + 2; j + 1 < tokens.size() && tokens[j] != "machine"; j += 2) {
      if (tokens[j] == "login")
        c.login = tokens[j + 1];
      else if (tokens[j] == "password")
        c.password = tokens[j + 1];
    }
    if (machine == host && !exact)
      exact = c;
    else if (machine == bare && !by_name)
      by_name = c;
  }
  return exact ? exact : by_name;
}

}  // namespace nemokit::registry
