#include "nemokit/dockerfile/context.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

IgnoreRules IgnoreRules::parse(const std::string& text, const std::string& file) {
  IgnoreRules rules;
  std::stringstream ss(text);
  std::string line;
  int lineno = 0;
  while (std::getline(ss, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    line.erase(0, line.find_first_not_of(" \t"));
    line.erase(line.find_last_not_of(" \t") + 1);
    if (line.empty()) continue;
    bool exception = line[0] == '!';
    if (exception) {
      line.erase(0, 1);
      rules.has_exceptions_ = true;
    }
    std::string clean;
    if (!clean_relative(line, clean)) clean = line;  // "../x" can never match a context path
    try {
      rules.rules_.push_back(Rule{PathPattern(clean), exception});
    } catch (const BuildError& e) {
      throw BuildError(file + ":" + std::to_string(lineno) + ": " + e.what());
    }
  }
  return rules;
}

IgnoreRules IgnoreRules::load(const fs::path& context) {
  fs::path f = context / ".dockerignore";
  if (!fs::is_regular_file(f)) return {};
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), f.string());
}

bool IgnoreRules::excluded(const std::string& rel) const {
  bool out = false;
  for (auto& r : rules_) {
    if (r.pattern.matches_itself_or_a_parent(rel)) out = !r.exception;
  }
  return out;
}

namespace {

bool has_wildcard(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> split(const std::string& rel) {
  std::vector<std::string> out;
  std::stringstream ss(rel);
  std::string p;
  while (std::getline(ss, p, '/'))
    if (!p.empty()) out.push_back(p);
  return out;
}

void glob(const fs::path& root, const std::string& base, const std::vector<std::string>& parts, size_t i,
          std::vector<std::string>& out) {
  if (i == parts.size()) {
    out.push_back(base);
    return;
  }
  std::string next = base.empty() ? "" : base + "/";
  if (!has_wildcard(parts[i])) {
    fs::path host = resolve_in_root(root, next + parts[i], i + 1 < parts.size());
    struct stat st;
    if (lstat(host.c_str(), &st) == 0) glob(root, next + parts[i], parts, i + 1, out);
    return;
  }
  fs::path dir = resolve_in_root(root, base, true);
  std::error_code ec;
  std::vector<std::string> names;
  for (auto& d : fs::directory_iterator(dir, ec)) names.push_back(d.path().filename().string());
  std::sort(names.begin(), names.end());
  for (auto& n : names)
    if (fnmatch(parts[i].c_str(), n.c_str(), 0) == 0) glob(root, next + n, parts, i + 1, out);
}

}  // namespace

std::vector<std::string> expand_source(const fs::path& root, const std::string& source, const IgnoreRules* ignore,
                                       const Location& where) {
  std::string clean;
  if (!clean_relative(source, clean))
    throw BuildError(where.str() + ": " + source + ": forbidden path outside the build context");
  std::vector<std::string> found;
  glob(root, "", split(clean), 0, found);
  std::vector<std::string> out;
  for (auto& f : found) {
    if (ignore && !f.empty() && ignore->excluded(f)) {
      // An excluded folder may still hold exceptions ("!dir/keep"); a file may not.
      struct stat st;
      bool dir = lstat(resolve_in_root(root, f, true).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      if (!dir || !ignore->has_exceptions()) continue;
    }
    out.push_back(f);
  }
  if (out.empty() && !has_wildcard(clean))
    throw BuildError(where.str() + ": " + source + ": no such file or directory in the build context" +
                     (found.empty() ? "" : " (excluded by .dockerignore)"));
  return out;
}

void hash_tree(const fs::path& root, const std::string& rel, const IgnoreRules* ignore, std::string& state) {
  fs::path host = rel.empty() ? root : resolve_in_root(root, rel, true);
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) throw BuildError(rel + ": " + std::strerror(errno));
  std::ostringstream line;
  line << rel << '\0' << std::oct << st.st_mode << '\0';
  if (S_ISLNK(st.st_mode)) {
    line << fs::read_symlink(host).string();
  } else if (S_ISREG(st.st_mode)) {
    rt::Sha256 h;
    int fd = open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) throw BuildError(rel + ": " + std::strerror(errno));
    std::vector<char> buf(1 << 20);
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) h.update(buf.data(), size_t(n));
    close(fd);
    line << h.finish_digest();
  }
  state += line.str() + "\n";
  if (!S_ISDIR(st.st_mode)) return;
  std::vector<std::string> names;
  for (auto& d : fs::directory_iterator(host)) names.push_back(d.path().filename().string());
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    std::string child = rel.empty() ? n : rel + "/" + n;
    if (ignore && ignore->excluded(child)) {
      struct stat cst;
      if (!ignore->has_exceptions() || lstat((host / n).c_str(), &cst) != 0 || !S_ISDIR(cst.st_mode)) continue;
    }
    hash_tree(root, child, ignore, state);
  }
}

}  // namespace nemokit::dockerfile
