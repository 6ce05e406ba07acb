#include "nemokit/runtime/run/rank0_checkpoint.hpp"

namespace nemokit::rt {

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
  comm.barrier();
  return written;
}

bool stop_on_any_rank(const StopSignal& stop, Communicator& comm) {
  int64_t votes = stop.requested() ? 1 : 0;
  comm.all_reduce_sum(&votes, 1);
  return votes > 0;
}

}  // namespace nemokit::rt
