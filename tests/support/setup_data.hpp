// The data scripts/setup.sh leaves for the tests (corpus, chats, tasks): each folder is named by an
// environment variable when set, else it is ~/.cache/nemokit/<name>.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "nemokit/runtime/run/paths.hpp"

namespace nemokit::test {

inline std::filesystem::path setup_data_dir(const char* env_var, const std::string& name) {
  if (const char* d = std::getenv(env_var)) return d;
  return rt::expand_home("~/.cache/nemokit/" + name);
}

}  // namespace nemokit::test
