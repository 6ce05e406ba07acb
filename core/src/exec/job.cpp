#include "exec/job.hpp"

#include "util/atomic_file.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace nemokit {
namespace fs = std::filesystem;

namespace {
std::string utc_stamp(const char* fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}
}  // namespace

fs::path default_job_root() {
  if (const char* env = std::getenv("NEMOKIT_JOB_ROOT"); env && *env) return env;
  return fs::current_path() / ".nemokit" / "jobs";
}

JobDir JobDir::create(const fs::path& root, const std::string& family, const std::string& stage,
                      const std::string& substage) {
  std::string base = utc_stamp("%Y%m%d-%H%M%S") + "-" + family + "-" + stage + (substage.empty() ? "" : "-" + substage);
  fs::create_directories(root);
  JobDir j;
  for (int n = 0;; ++n) {
    fs::path p = root / (n == 0 ? base : base + "." + std::to_string(n));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {  // atomic claim: two runs in the same second get two folders
      j.path = p;
      break;
    }
    if (ec) throw std::runtime_error(p.string() + ": cannot create job folder: " + ec.message());
  }
  j.meta = {{"id", j.path.filename().string()},
            {"family", family},
            {"stage", stage},
            {"substage", substage},
            {"created_at", utc_stamp("%Y-%m-%dT%H:%M:%SZ")},
            {"host_pid", ::getpid()},
            {"executor", "local"},
            {"state", "CREATED"}};
  j.save();
  return j;
}

void JobDir::save() const { write_file_atomic(path / "job.json", meta.dump(2) + "\n"); }

void JobDir::set_state(const std::string& state, int exit_code) {
  meta["state"] = state;
  meta["exit_code"] = exit_code;
  meta["updated_at"] = utc_stamp("%Y-%m-%dT%H:%M:%SZ");
  save();
}

}  // namespace nemokit
