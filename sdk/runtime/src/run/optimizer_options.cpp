#include "nemokit/runtime/run/optimizer_options.hpp"

#include <cmath>

namespace nemokit::rt {

void OptimizerOptions::read(TableReader& t) {
  t.number("lr", lr);
  t.number("min_lr", min_lr);
  t.string("schedule", schedule);
  t.integer("warmup_steps", warmup_steps, 0);
  t.number("decay_fraction", decay_fraction);
  t.number("weight_decay", weight_decay);
  t.number("adam_beta1", adam_beta1);
  t.number("adam_beta2", adam_beta2);
  t.number("grad_clip", grad_clip);
  if (schedule != "constant" && schedule != "cosine" && schedule != "wsd")
    t.fail("schedule", "expected \"constant\", \"cosine\" or \"wsd\", got \"" + schedule + "\"");
  if (decay_fraction < 0 || decay_fraction > 1) t.fail("decay_fraction", "must be in [0, 1]");
  if (!(lr > 0)) t.fail("lr", "must be positive");
  if (min_lr < 0 || min_lr > lr) t.fail("min_lr", "must be in [0, lr]");
}

AdamWConfig OptimizerOptions::adamw() const {
  AdamWConfig c;
  c.beta1 = float(adam_beta1);
  c.beta2 = float(adam_beta2);
  c.weight_decay = float(weight_decay);
  return c;
}

LrSchedule OptimizerOptions::lr_schedule(int64_t total_steps) const {
  LrSchedule s;
  s.kind = LrSchedule::parse_kind(schedule);
  s.max_lr = float(lr);
  s.min_lr = float(min_lr);
  s.warmup_steps = warmup_steps;
  s.total_steps = total_steps;
  s.decay_steps = int64_t(std::llround(decay_fraction * double(total_steps)));
  return s;
}

}  // namespace nemokit::rt
