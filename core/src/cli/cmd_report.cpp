// `nemokit report JOB [--out FILE]`: the job's report page (report/job_report.hpp), written
// atomically, by default as report.html in the job folder.
#include "cli/context.hpp"
#include "cli/job_lookup.hpp"
#include "profiles/wandb_section.hpp"
#include "report/job_report.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <iostream>

namespace nemokit::cli {
namespace fs = std::filesystem;

int cmd_report(Context& ctx) {
  JobDir job = job_from_args(ctx, "report JOB [--out FILE]");
  const fs::path out = ctx.args.value("--out") ? fs::path(*ctx.args.value("--out")) : job.path / "report.html";
  std::string sync;
  try {  // the page is worth having without it
    if (!ctx.profiles().file().empty())
      if (auto w = read_wandb_section(ctx.profiles().file())) sync = wandb_sync_command(*w, job.path);
  } catch (const UserError& e) {
    std::cerr << "nemokit: warning: env.toml not read (" << e.what() << "); the report names no wandb sync command\n";
  }
  // The store the job published to, which may not be the one this shell would pick.
  const std::string recorded = job.meta.value("artifacts_root", std::string());
  const rt::artifacts::Store store = recorded.empty() ? ctx.artifact_store() : rt::artifacts::Store(recorded);
  report::JobReport r = report::render_job_report(job, sync, store);
  for (const auto& w : r.warnings) std::cerr << "nemokit: warning: " << w << "\n";
  rt::write_file_atomic(out, r.html);
  std::string plots;
  for (const auto& p : r.plotted) plots += (plots.empty() ? "" : ", ") + p;
  std::cout << "wrote " << out.string() << " (" << r.plotted.size() << (r.plotted.size() == 1 ? " plot" : " plots")
            << (plots.empty() ? "" : ": " + plots) << ")\n";
  return 0;
}

}  // namespace nemokit::cli
