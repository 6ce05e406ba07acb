#include "nemokit/runtime/run/heldout_loss.hpp"

#include "nemokit/runtime/data/gpt_dataset.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace nemokit::rt {

double HeldOutLoss::perplexity() const { return std::exp(mean()); }

Batch window_batch(const std::vector<int32_t>& windows, int64_t rows, int64_t seq) {
  Batch b;
  b.batch = rows;
  b.seq = seq;
  b.input_ids.resize(size_t(rows * seq));
  b.targets.resize(size_t(rows * seq));
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* w = windows.data() + r * (seq + 1);
    std::copy(w, w + seq, b.input_ids.begin() + r * seq);
    std::copy(w + 1, w + seq + 1, b.targets.begin() + r * seq);
  }
  return b;
}

HeldOutLoss heldout_loss(NemotronH& model, const HeldOutWindows& w, Communicator* comm) {
  BlendedSampler sampler = open_blended_sampler(read_blend_split(w.blend, w.split), w.seq_length, w.seed);
  const int64_t total = w.windows > 0 ? w.windows : int64_t(sampler.samples_per_epoch());
  const int64_t micro = std::max<int64_t>(1, w.micro_batch);
  const int rank = comm ? comm->rank() : 0, ranks = comm ? comm->size() : 1;
  double sums[3] = {0, 0, 0};  // loss, tokens, windows
  int64_t batch_index = 0, mine = 0;
  // Expert parallel: every forward is collective, so a rank left without a batch in the last
  // round runs another rank's batch and does not count it.
  const bool lockstep = model.expert_comm() != nullptr;
  std::optional<Batch> spare;
  for (int64_t done = 0; done < total; done += micro, ++batch_index) {
    // Every rank draws every batch, so the windows do not depend on the number of ranks.
    const int64_t rows = std::min(micro, total - done);
    std::vector<int32_t> windows = sampler.next_batch(size_t(rows));
    if (batch_index % ranks != rank) {
      if (lockstep && !spare) spare = window_batch(windows, rows, w.seq_length);
      continue;
    }
    StepResult r = model.forward_backward(window_batch(windows, rows, w.seq_length), LossOptions{}, /*backward=*/false);
    sums[0] += r.loss_sum;
    sums[1] += double(r.tokens);
    sums[2] += double(rows);
    ++mine;
  }
  if (lockstep)
    for (int64_t round = mine; round < (batch_index + ranks - 1) / ranks; ++round)
      model.forward_backward(*spare, LossOptions{}, false);
  if (comm) comm->all_reduce_sum(sums, 3);
  return {sums[0], int64_t(sums[1]), int64_t(sums[2])};
}

}  // namespace nemokit::rt
