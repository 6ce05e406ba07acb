#include <cmath>
#include <stdexcept>

#include "nemokit/runtime/optim.hpp"

namespace nemokit::rt {

float LrSchedule::lr(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return max_lr * float(step + 1) / float(warmup_steps);
  switch (kind) {
    case Kind::constant: return max_lr;
    case Kind::cosine: {
      int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
      double progress = std::min(1.0, double(step - warmup_steps) / double(span));
      return float(min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
    }
    case Kind::wsd: {
      int64_t decay_start = total_steps - decay_steps;
      if (step < decay_start || decay_steps <= 0) return max_lr;
      double progress = std::min(1.0, double(step - decay_start) / double(decay_steps));
      return float(max_lr + (min_lr - max_lr) * progress);
    }
  }
  return max_lr;
}

LrSchedule::Kind LrSchedule::parse_kind(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "cosine") return Kind::cosine;
  if (name == "wsd" || name == "warmup-stable-decay") return Kind::wsd;
  throw std::invalid_argument("unknown learning-rate schedule '" + name + "' (use constant, cosine or wsd)");
}

}  // namespace nemokit::rt
