// `nemokit jobs`, `logs`, `cancel` and `probe`: the job folders and what Slurm says about them,
// and a tiny job with a profile's shape that shows where each task lands.
#include "cli/context.hpp"
#include "cli/job_lookup.hpp"
#include "exec/job.hpp"
#include "exec/job_shape.hpp"
#include "exec/local_ranks.hpp"
#include "exec/log_tail.hpp"
#include "exec/process.hpp"
#include "exec/sbatch_script.hpp"
#include "exec/slurm_client.hpp"
#include "exec/slurm_follow.hpp"
#include "exec/slurm_plan.hpp"
#include "exec/slurm_submit.hpp"
#include "exec/task_env.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/dist.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iomanip>
#include <iostream>

namespace nemokit::cli {
namespace fs = std::filesystem;

std::vector<fs::path> job_roots(Context& ctx) {
  std::vector<fs::path> roots = {default_job_root()};
  try {
    const ProfileSet& set = ctx.profiles();
    for (const auto& name : set.names())
      if (auto r = set.get(name).str("job_root"); r && !r->empty()) roots.push_back(fs::absolute(*r));
  } catch (const UserError& e) {
    std::cerr << "nemokit: warning: profiles not read (" << e.what() << "); listing " << roots[0].string() << " only\n";
  }
  return roots;
}

JobDir job_from_args(Context& ctx, const char* usage) {
  if (ctx.args.positionals.size() != 1) throw UserError(std::string("usage: nemokit ") + usage);
  const std::string& ref = ctx.args.positionals[0];
  auto j = find_job(job_roots(ctx), ref);
  if (!j) throw UserError("no job \"" + ref + "\" (see `nemokit jobs`; a job is named by its folder, its id or its Slurm id)");
  return *j;
}

namespace {

bool is_final(const std::string& state) {
  SlurmJobState s;
  s.state = state;
  return s.ended() || state == "ABORTED" || state == "UNKNOWN" || state == "NOT_SUBMITTED";
}

std::string this_host() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

bool local_job_alive(const JobDir& j) {
  int pid = j.meta.value("host_pid", 0);
  return pid > 0 && j.meta.value("host", "") == this_host() && (kill(pid, 0) == 0 || errno == EPERM);
}

// Asks Slurm (or the process table, for local jobs) how a job that is not finished stands, and
// records a final state in job.json.
void refresh_state(JobDir& j) {
  std::string state = j.meta.value("state", "");
  if (is_final(state)) return;
  if (j.meta.value("executor", "local") == "slurm") {
    std::string id = j.slurm_job_id();
    if (id.empty()) return;
    SlurmJobState st = slurm_job_state(id);
    if (st.state.empty()) return;
    j.meta["restarts"] = st.restarts;
    if (st.state != state) j.set_state(st.state, st.exit_code);
  } else if (state == "RUNNING" && j.meta.value("host", "") == this_host() && !local_job_alive(j)) {
    j.set_state("ABORTED", -1);  // its nemokit was killed before it could record the end
  }
}

std::vector<std::pair<fs::path, int>> log_files(const JobDir& j) {
  std::vector<std::pair<fs::path, int>> out;
  if (!j.slurm_job_id().empty()) {
    out.push_back({j.logs() / ("slurm-" + j.slurm_job_id() + ".out"), 1});
    out.push_back({j.logs() / ("slurm-" + j.slurm_job_id() + ".err"), 2});
    return out;
  }
  std::error_code ec;
  std::vector<fs::path> ranks;
  for (const auto& e : fs::directory_iterator(j.logs(), ec))
    if (e.path().extension() == ".log") ranks.push_back(e.path());
  std::sort(ranks.begin(), ranks.end());
  for (const auto& r : ranks) out.push_back({r, 1});
  return out;
}

}  // namespace

int cmd_jobs(Context& ctx) {
  std::vector<JobDir> jobs = list_jobs(job_roots(ctx));
  if (jobs.empty()) {
    std::cout << "no jobs under " << default_job_root().string() << "\n";
    return 0;
  }
  // Every state is refreshed first, then each column is as wide as its widest cell, so that a
  // state such as NOT_SUBMITTED or OUT_OF_MEMORY, or a long job id, keeps the columns aligned.
  std::vector<std::vector<std::string>> rows = {{"JOB", "EXECUTOR", "SLURM ID", "STATE", "EXIT", "FOLDER"}};
  for (auto& j : jobs) {
    try {
      refresh_state(j);
    } catch (const std::exception& e) {
      std::cerr << "nemokit: " << j.id() << ": state not refreshed: " << e.what() << "\n";
    }
    int code = j.meta.value("exit_code", -1);
    rows.push_back({j.id(), j.meta.value("executor", "local"), j.slurm_job_id().empty() ? "-" : j.slurm_job_id(),
                    j.meta.value("state", "?"), code < 0 ? "-" : std::to_string(code), j.path.string()});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c + 1 < r.size(); ++c) line += r[c] + std::string(width[c] - r[c].size() + 2, ' ');
    std::cout << line << r.back() << "\n";
  }
  return 0;
}

int cmd_logs(Context& ctx) {
  JobDir j = job_from_args(ctx, "logs JOB [-f]");
  bool follow = ctx.args.flag("-f") || ctx.args.flag("--follow");
  std::vector<LogTail> tails;
  for (const auto& [file, fd] : log_files(j)) tails.emplace_back(file, fd);
  for (auto& t : tails) t.pump();
  if (!follow) return 0;
  for (;;) {
    j = JobDir::open(j.path);  // the running nemokit records the end in job.json
    refresh_state(j);
    bool done = is_final(j.meta.value("state", "")) || (j.meta.value("executor", "local") == "local" && !local_job_alive(j));
    usleep(done ? 0 : 500 * 1000);
    if (!j.slurm_job_id().empty() || tails.empty()) {
      tails.clear();  // local rank logs appear as ranks start
      for (const auto& [file, fd] : log_files(j)) tails.emplace_back(file, fd);
    }
    for (auto& t : tails) t.pump();
    if (done) return 0;
  }
}

int cmd_cancel(Context& ctx) {
  JobDir j = job_from_args(ctx, "cancel JOB");
  refresh_state(j);
  if (is_final(j.meta.value("state", ""))) {
    std::cout << j.id() << " already ended (" << j.meta.value("state", "") << ")\n";
    return 0;
  }
  if (j.meta.value("executor", "local") == "slurm") {
    slurm_cancel(j.slurm_job_id());
    std::cout << "cancelled Slurm job " << j.slurm_job_id() << " (" << j.id() << ")\n";
    return 0;
  }
  if (!local_job_alive(j)) throw UserError(j.id() + ": its nemokit process (pid " + std::to_string(j.meta.value("host_pid", 0)) +
                                           " on " + j.meta.value("host", "?") + ") is not running here");
  // The local executor passes SIGTERM on to every rank and records the end itself.
  kill(j.meta.value("host_pid", 0), SIGTERM);
  std::cout << "sent SIGTERM to " << j.id() << " (pid " << j.meta.value("host_pid", 0) << ")\n";
  return 0;
}

int cmd_probe(Context& ctx) {
  const Profile* prof = ctx.selected_profile();
  bool detached = ctx.args.batch_profile.has_value();
  bool slurm = prof && prof->executor() == "slurm";
  if (prof && !slurm && prof->executor() != "local")
    throw UserError(prof->file.string() + " [" + prof->name + "]: executor \"" + prof->executor() + "\" is not supported (use \"local\" or \"slurm\")");
  if (!slurm && detached) throw UserError("--batch needs a profile whose executor is slurm");
  JobShape shape = resolve_job_shape(prof, toml::table{}, {}, detached, "nemokit-probe");
  std::string profile_name = prof ? prof->name : "local";
  if (!slurm) {
    if (ctx.args.dry_run) {
      std::cout << "# probe: " << shape.tasks_per_node << " local rank(s): nemokit __probe\n";
      return 0;
    }
    JobDir job = JobDir::create(job_root_for(prof), "probe", profile_name, "");
    job.meta["command"] = "probe";
    job.set_state("RUNNING", -1);
    LocalRanks ranks;
    ranks.exe = self_executable();
    ranks.args = {"__probe"};
    ranks.nproc = shape.tasks_per_node;
    ranks.log_dir = job.logs();
    int rc = run_local_ranks(ranks);
    job.set_state(rc == 0 ? "COMPLETED" : "FAILED", rc);
    return rc;
  }
  fs::path root = job_root_for(prof);
  auto build = [&](const fs::path& job_dir) {
    SlurmJobRequest req;
    req.profile = prof;
    req.shape = shape;
    req.job_dir = job_dir;
    req.title = "nemokit probe (profile " + profile_name + ")";
    req.task_args = {"__probe"};
    return plan_slurm_job(req);
  };
  if (ctx.args.dry_run) {
    std::cout << render_sbatch_script(build(root / ("<time>-probe-" + profile_name)).script);
    return 0;
  }
  if (!on_path("sbatch"))
    throw UserError(prof->file.string() + " [" + profile_name + "]: the Slurm executor needs sbatch, which is not on PATH");
  JobDir job = JobDir::create(root, "probe", profile_name, "");
  job.meta["command"] = "probe";
  job.meta["profile"] = profile_name;
  std::string id = submit_slurm_job(job, build(job.path));
  std::cerr << "nemokit: submitted probe job " << id << ", job folder " << job.path.string() << "\n";
  if (detached) {
    std::cout << id << "\n";
    return 0;
  }
  return follow_slurm_job(job, id);
}

int cmd_probe_task(Context&) {
  TaskIdentity t = adopt_task_identity();
  const int gpus = visible_gpu_count();
  std::printf("rank %d/%d host %s local %d gpus %d\n", t.rank, t.world_size, this_host().c_str(), t.local_rank, gpus);
  std::fflush(stdout);
  if (gpus == 0) return 0;
  if (std::string why = rt::nccl_unavailable(); !why.empty()) {  // the ranks still checked out
    if (t.rank == 0) std::fprintf(stderr, "nccl probe: %s\n", why.c_str());
    return 0;
  }
  // With GPUs every task joins one NCCL all-reduce; rank 0 reports the figure, any rank its
  // failure.
  rt::RankInfo self{t.rank, t.world_size, t.local_rank, t.master_addr.empty() ? "127.0.0.1" : t.master_addr, 0};
  if (!t.master_port.empty() && t.master_port.find_first_not_of("0123456789") == std::string::npos &&
      t.master_port.size() <= 5)
    self.master_port = std::stoi(t.master_port);
  const std::string line = rt::nccl_allreduce_probe(self, size_t(256) << 20);
  const bool failed = line.rfind("nccl probe:", 0) == 0;
  if (failed) std::fprintf(stderr, "rank %d: %s\n", t.rank, line.c_str());
  else if (t.rank == 0) std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return failed ? 1 : 0;
}

}  // namespace nemokit::cli
