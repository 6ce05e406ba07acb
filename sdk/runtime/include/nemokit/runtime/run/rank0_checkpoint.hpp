#pragma once
// What every training loop over several ranks does at a save and at a stop signal, in one place:
// the checkpoint is written once, by rank 0, from every rank's state; a signal that reached any
// rank stops them all after the same step.
#include <cstdint>
#include <chrono>
#include <filesystem>
#include <string>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/stop_signal.hpp"

namespace nemokit::rt {

// How long the other ranks wait for rank 0 working alone (preparing missing data, writing a
// checkpoint), longer than any collective should take: NEMOKIT_RANK0_WAIT_S seconds, else a
// day. A rank that dies meanwhile ends the job through the launcher.
std::chrono::milliseconds rank0_work_timeout();

// Collective (every rank calls it): ZeRO-1's blocks of the moments and the expert-parallel
// experts (weights, moments) gathered to rank 0, which writes ckpts.for_step(step) and marks it
// latest; no rank returns before rank 0 has written (none exits, having the launcher end the job,
// while the checkpoint is half written). Returns the folder on rank 0, an empty path elsewhere.
std::filesystem::path save_on_rank0(CheckpointDir& ckpts, int64_t step, NemotronH& model, AdamW& optimizer,
                                    const TrainerState& state, const Tokenizer* tokenizer, Communicator& comm);

// Collective: the signal that reached a rank of `comm` (the lowest such rank's), 0 when none did.
// Signals may arrive at different steps on different ranks; all stop after the same one.
int stop_on_any_rank(const StopSignal& stop, Communicator& comm);

// What a loop stopped by `signal` after `step` says: "stopped by signal 15 after step 40;
// checkpoint saved, run again to resume".
std::string stopped_message(int signal, int64_t step);

}  // namespace nemokit::rt
