#pragma once
// SIGTERM, SIGUSR1 (what Slurm sends before a time limit with --signal) and SIGINT ask the
// training loop to checkpoint and stop after the step in flight.

namespace nemokit::rt {

class StopSignal {
 public:
  StopSignal();   // installs the handlers
  ~StopSignal();  // restores the previous ones
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  bool requested() const;
  int signal_number() const;  // the first signal received, 0 if none
};

// Exit code of a run stopped by a signal after saving its checkpoint: "try again" (EX_TEMPFAIL),
// so executors requeue it and a new run resumes.
constexpr int kExitStoppedResumable = 75;

}  // namespace nemokit::rt
