#pragma once
// The optimizer keys every training stage's [train] table shares — learning rate and schedule,
// AdamW, clipping — read with the key named on errors, and turned into the runtime's objects.
// Stages set their own defaults before reading.

#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <cstdint>
#include <string>

namespace nemokit::rt {

struct OptimizerOptions {
  double lr = 3e-4, min_lr = 3e-5;
  std::string schedule = "cosine";  // constant | cosine | wsd
  int64_t warmup_steps = 0;
  double decay_fraction = 0.2;      // wsd: share of the steps spent decaying
  double weight_decay = 0.1, adam_beta1 = 0.9, adam_beta2 = 0.95, grad_clip = 1.0;

  // Reads lr, min_lr, schedule, warmup_steps, decay_fraction, weight_decay, adam_beta1,
  // adam_beta2, grad_clip; throws std::invalid_argument naming the key.
  void read(TableReader& train);
  AdamWConfig adamw() const;
  LrSchedule lr_schedule(int64_t total_steps) const;
};

}  // namespace nemokit::rt
