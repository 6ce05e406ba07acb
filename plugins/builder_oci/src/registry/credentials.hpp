#pragma once
// Registry credentials from the enroot credentials file (netrc format:
// "machine HOST login USER password SECRET").
#include <filesystem>
#include <optional>
#include <string>

namespace nemokit::registry {

struct Credentials {
  std::string login, password;
};

std::filesystem::path default_credentials_file();

// The entry for `host` ("host:port" first, then "host").
std::optional<Credentials> find_credentials(const std::filesystem::path& file, const std::string& host);

}  // namespace nemokit::registry
