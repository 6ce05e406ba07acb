#include "rlhf/bradley_terry.hpp"

#include <cmath>

namespace nemokit::rl {

PairLoss bradley_terry(double r_chosen, double r_rejected) {
  const double x = r_rejected - r_chosen;  // loss = softplus(x)
  PairLoss p;
  p.loss = x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  const double s = x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));  // sigmoid(x)
  p.d_chosen = -s;
  p.d_rejected = s;
  return p;
}

}  // namespace nemokit::rl
