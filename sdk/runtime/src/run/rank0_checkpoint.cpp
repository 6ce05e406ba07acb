#include "nemokit/runtime/run/rank0_checkpoint.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace nemokit::rt {

std::chrono::milliseconds rank0_work_timeout() {
  if (const char* s = std::getenv("NEMOKIT_RANK0_WAIT_S")) {
    char* end = nullptr;
    const double secs = std::strtod(s, &end);
    if (end != s && *end == '\0' && secs > 0) return std::chrono::milliseconds(int64_t(secs * 1000));
    throw std::invalid_argument(std::string("NEMOKIT_RANK0_WAIT_S=") + s + ": expected a number of seconds above 0");
  }
  return std::chrono::hours(24);
}

std::filesystem::path save_on_rank0(CheckpointDir& ckpts, int64_t step, NemotronH& model, AdamW& optimizer,
                                    const TrainerState& state, const Tokenizer* tokenizer, Communicator& comm) {
  optimizer.gather_state();
  const RemoteExperts experts = gather_remote_experts(model, optimizer);
  std::filesystem::path written;
  if (comm.rank() == 0) {
    written = ckpts.for_step(step);
    save_training_checkpoint(written.string(), model, optimizer, state, tokenizer, kDefaultShardBytes, experts);
    ckpts.mark_latest(step);
  }
  comm.wait_for_ranks(rank0_work_timeout());
  return written;
}

int stop_on_any_rank(const StopSignal& stop, Communicator& comm) {
  // Each rank's signal at its own place, zeros elsewhere: the sum is every rank's.
  std::vector<int64_t> signals(size_t(comm.size()), 0);
  signals[size_t(comm.rank())] = stop.requested() ? std::max(1, stop.signal_number()) : 0;
  comm.all_reduce_sum(signals.data(), signals.size());
  for (int64_t s : signals)
    if (s != 0) return int(s);
  return 0;
}

std::string stopped_message(int signal, int64_t step) {
  return "stopped by signal " + std::to_string(signal) + " after step " + std::to_string(step) +
         "; checkpoint saved, run again to resume";
}

}  // namespace nemokit::rt
