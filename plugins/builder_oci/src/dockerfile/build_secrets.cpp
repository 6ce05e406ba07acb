// --secret values, read as docker build (buildx) reads them.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"

namespace nemokit::dockerfile {

SecretSource parse_secret_option(const std::string& value) {
  auto fail = [&](const std::string& why) { throw BuildError("--secret " + value + ": " + why); };
  SecretSource s;
  std::string type;
  std::stringstream in(value);
  std::string field;
  while (std::getline(in, field, ',')) {
    size_t eq = field.find('=');
    if (eq == std::string::npos) fail("'" + field + "' is not key=value (id=ID,src=FILE or id=ID,env=VAR)");
    std::string key = field.substr(0, eq), v = field.substr(eq + 1);
    if (key == "id")
      s.id = v;
    else if (key == "src" || key == "source")
      s.file = v;
    else if (key == "env")
      s.env = v;
    else if (key == "type")
      type = v;
    else
      fail("unknown key '" + key + "' (id, src, env, type)");
  }
  if (s.id.empty()) fail("id= is required");
  if (!type.empty() && type != "file" && type != "env") fail("type=" + type + ": use file or env");
  if (!s.file.empty() && !s.env.empty()) fail("give src= or env=, not both");
  if (type == "env" && !s.file.empty()) fail("type=env takes env=, not src=");
  if (type == "file" && !s.env.empty()) fail("type=file takes src=, not env=");
  // As buildx: without a source the id names it, an environment variable when type=env or
  // when such a variable is set, else a file.
  if (s.file.empty() && s.env.empty()) {
    if (type == "env" || (type.empty() && std::getenv(s.id.c_str())))
      s.env = s.id;
    else
      s.file = s.id;
  }
  if (!s.file.empty()) s.file = std::filesystem::absolute(s.file);
  return s;
}

std::optional<std::string> read_secret(const SecretSource& s) {
  if (!s.env.empty()) {
    const char* v = std::getenv(s.env.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  }
  std::ifstream in(s.file, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nemokit::dockerfile
