#include "exec/slurm_follow.hpp"

#include "exec/log_tail.hpp"
#include "exec/signal_pipe.hpp"
#include "exec/slurm_client.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <stdexcept>

namespace nemokit {

int follow_slurm_job(JobDir& job, const std::string& slurm_id) {
  // Ctrl-C becomes "cancel the job" instead of ending nemokit with the job left running.
  SignalPipe stop({SIGINT, SIGTERM, SIGHUP});
  LogTail out(job.logs() / ("slurm-" + slurm_id + ".out"), 1);
  LogTail err(job.logs() / ("slurm-" + slurm_id + ".err"), 2);
  std::string last_state;
  int polls = 0;
  auto unknown_since = std::chrono::steady_clock::time_point::max();
  bool cancelled = false;
  SlurmJobState st;
  for (;;) {
    out.pump();
    err.pump();
    st = slurm_job_state(slurm_id);
    if (st.state.empty()) {
      // Slurm forgot the job and nothing recorded how it ended: give up after ~15 s of polls.
      auto now = std::chrono::steady_clock::now();
      if (unknown_since == std::chrono::steady_clock::time_point::max()) unknown_since = now;
      if (now - unknown_since > std::chrono::seconds(15)) {
        std::cerr << "nemokit: Slurm no longer knows job " << slurm_id << " and has no record of how it ended\n";
        job.set_state("UNKNOWN", -1);
        return 1;
      }
    } else {
      unknown_since = std::chrono::steady_clock::time_point::max();
      if (st.state != last_state) {
        std::cerr << "nemokit: job " << slurm_id << " " << st.state
                  << (st.reason.empty() || st.reason == "None" ? "" : " (" + st.reason + ")") << "\n";
        job.meta["restarts"] = st.restarts;
        job.set_state(st.state, st.exit_code);
        last_state = st.state;
      }
      if (st.ended()) break;
    }
    // Quick polls while a short job may be ending, gentler ones (one squeue each) later.
    ++polls;
    int sig = stop.wait(polls < 50 ? 200 : 500);
    if (sig == 0) continue;
    if (cancelled) {
      std::cerr << "nemokit: no longer following job " << slurm_id << " (cancel already requested)\n";
      return 128 + sig;
    }
    std::cerr << "nemokit: " << strsignal(sig) << ": cancelling job " << slurm_id << "\n";
    try {
      slurm_cancel(slurm_id);
    } catch (const std::exception& e) {
      std::cerr << "nemokit: " << e.what() << "\n";
    }
    cancelled = true;
  }
  // Output written just before the end may reach the file a moment later (shared file systems).
  out.pump();
  err.pump();
  for (int i = 0; i < 3; ++i) {
    usleep(100 * 1000);
    if (out.pump() + err.pump() == 0) break;
  }
  if (cancelled) return 130;
  return st.exit_code < 0 ? 1 : st.exit_code;
}

}  // namespace nemokit
