#include "plugins/plugin_file_safety.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nemokit {
namespace fs = std::filesystem;

namespace {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", unsigned(mode & 07777));
  return buf;
}

// Why `what` (the plugin file or its folder) at `p` is unsafe, or "".
std::string unsafe(const fs::path& p, const char* what) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return std::string("cannot check the ") + what + " " + p.string() + ": " + std::strerror(errno);
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me)
    return std::string("the ") + what + " " + p.string() + " is owned by user id " + std::to_string(st.st_uid) +
           ", neither root nor you (" + std::to_string(me) + ")";
  if (st.st_mode & S_IWOTH)
    return std::string("the ") + what + " " + p.string() + " is writable by everyone (mode " + octal_mode(st.st_mode) + ")";
  return {};
}

}  // namespace

std::string insecure_plugin_path(const fs::path& path) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) return "cannot resolve " + path.string() + ": " + ec.message();
  std::string why = unsafe(real, "plugin file");
  if (why.empty()) why = unsafe(real.parent_path(), "folder");
  if (why.empty()) return {};
  return "refused, as loading it could run code someone else put there: " + why;
}

}  // namespace nemokit
