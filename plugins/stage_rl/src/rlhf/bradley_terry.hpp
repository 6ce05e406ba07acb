#pragma once
// The Bradley-Terry preference loss of a reward model: P(chosen beats rejected) =
// sigmoid(r_chosen - r_rejected), so the loss of one pair is -log sigmoid(r_c - r_r).

namespace nemokit::rl {

struct PairLoss {
  double loss = 0;        // -log sigmoid(r_c - r_r) = softplus(r_r - r_c)
  double d_chosen = 0;    // d loss / d r_c = -sigmoid(r_r - r_c)
  double d_rejected = 0;  // d loss / d r_r = +sigmoid(r_r - r_c)
};

// Stable for any margin: neither exp(+large) nor log(0) is formed.
PairLoss bradley_terry(double r_chosen, double r_rejected);

}  // namespace nemokit::rl
