#include "build_test_support.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/sha256.hpp"
#include "support/process.hpp"
#include "support/remove_when_passed.hpp"

namespace buildtest {

Result run(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& stdin_text) {
  nemokit::test::RunOptions opt;
  for (const auto& e : env) opt.env[e.substr(0, e.find('='))] = e.find('=') == std::string::npos ? "" : e.substr(e.find('=') + 1);
  opt.stdin_text = stdin_text;
  nemokit::test::RunResult r = nemokit::test::run(argv, opt);
  return {r.exit_code, r.out, r.err};
}

fs::path scratch_dir(const std::string& name) {
  fs::path p = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "build" / "work" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  nemokit::test::remove_when_passed(p);
  return p;
}

fs::path test_base_dir() {
  fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "build" / "base";
  fs::path script = fs::path(NEMOKIT_SOURCE_DIR) / "tests" / "build" / "make_test_base.sh";
  // Remade when the script changes.
  fs::path stamp = dir / "script.sha256";
  std::string want = nemokit::rt::Sha256::digest_of(read_file(script));
  // ctest -j runs tests of one binary side by side: one of them makes the base.
  fs::create_directories(dir);
  int lock = open((dir.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  flock(lock, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() { close(fd); }
  } unlock{lock};
  if (fs::exists(dir / "base.tar") && fs::exists(stamp) && read_file(stamp) == want) return dir;
  Result r = run({"sh", script.string(), dir.string()});
  if (r.code != 0) throw std::runtime_error("make_test_base.sh failed: " + r.err);
  write_file(stamp, want);
  return dir;
}

std::map<std::string, std::string> tree_listing(const fs::path& root) {
  std::map<std::string, std::string> out;
  auto describe = [&](const fs::path& p) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat " + p.string());
    std::ostringstream s;
    char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : S_ISREG(st.st_mode) ? 'f' : 'o';
    s << type << " " << std::oct << (st.st_mode & 07777) << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISLNK(st.st_mode)) s << " -> " << fs::read_symlink(p).string();
    if (S_ISREG(st.st_mode)) s << " " << nemokit::rt::Sha256::digest_of(read_file(p));
    return s.str();
  };
  out[""] = describe(root);
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
    out[it->path().lexically_relative(root).string()] = describe(it->path());
  return out;
}

}  // namespace buildtest
