#include "exec/job.hpp"

#include "profiles/profiles.hpp"
#include "util/read_file.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <unistd.h>

#include <algorithm>
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

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}
}  // namespace

fs::path default_job_root() {
  if (const char* env = std::getenv("NEMOKIT_JOB_ROOT"); env && *env) return fs::absolute(env);
  return fs::current_path() / ".nemokit" / "jobs";
}

fs::path job_root_for(const Profile* profile) {
  if (profile)
    if (auto r = profile->str("job_root"); r && !r->empty()) return fs::absolute(*r);
  return default_job_root();
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
      j.path = fs::absolute(p);
      break;
    }
    if (ec) throw std::runtime_error(p.string() + ": cannot create job folder: " + ec.message());
  }
  fs::create_directories(j.path / "logs");
  j.meta = {{"id", j.path.filename().string()},
            {"family", family},
            {"stage", stage},
            {"substage", substage},
            {"created_at", utc_stamp("%Y-%m-%dT%H:%M:%SZ")},
            {"host", host_name()},
            {"host_pid", ::getpid()},
            {"executor", "local"},
            {"state", "CREATED"}};
  j.save();
  return j;
}

JobDir JobDir::open(const fs::path& path) {
  JobDir j;
  j.path = fs::absolute(path);
  fs::path file = j.path / "job.json";
  try {
    j.meta = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
  }
  if (!j.meta.is_object()) throw std::runtime_error(file.string() + ": not a JSON object");
  return j;
}

void JobDir::save() const { rt::write_file_atomic(path / "job.json", meta.dump(2) + "\n"); }

void JobDir::set_state(const std::string& state, int exit_code) {
  meta["state"] = state;
  meta["exit_code"] = exit_code;
  meta["updated_at"] = utc_stamp("%Y-%m-%dT%H:%M:%SZ");
  save();
}

std::vector<JobDir> list_jobs(const std::vector<fs::path>& roots) {
  std::vector<JobDir> out;
  std::vector<fs::path> seen;
  for (const auto& root : roots) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(root, ec);
    if (std::find(seen.begin(), seen.end(), canon) != seen.end()) continue;
    seen.push_back(canon);
    if (!fs::is_directory(root, ec)) continue;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (!e.is_directory() || !fs::exists(e.path() / "job.json")) continue;
      try {
        out.push_back(JobDir::open(e.path()));
      } catch (const std::exception&) {
        // a folder being written right now, or not ours: listing goes on without it
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const JobDir& a, const JobDir& b) {
    return std::make_pair(a.meta.value("created_at", ""), a.path.filename().string()) <
           std::make_pair(b.meta.value("created_at", ""), b.path.filename().string());
  });
  return out;
}

std::optional<JobDir> find_job(const std::vector<fs::path>& roots, const std::string& ref) {
  std::error_code ec;
  if (ref.find('/') != std::string::npos && fs::exists(fs::path(ref) / "job.json", ec)) return JobDir::open(ref);
  std::optional<JobDir> found;
  for (auto& j : list_jobs(roots))
    if (j.id() == ref || j.path.filename() == ref || (!j.slurm_job_id().empty() && j.slurm_job_id() == ref)) found = j;
  return found;
}

}  // namespace nemokit
