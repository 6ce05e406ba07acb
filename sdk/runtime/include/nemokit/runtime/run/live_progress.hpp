#pragma once
// The one-line live display on a terminal (step, loss, tokens/s, ETA), redrawn in place; plain
// lines every `every` steps when stderr is not a terminal (logs, Slurm).

#include <cstdint>
#include <string>

namespace nemokit::rt {

class LiveProgress {
 public:
  LiveProgress(int64_t total_steps, int64_t every);
  void update(int64_t step, float loss, double tokens_per_s, double seconds_per_step);
  void note(const std::string& line);  // a full line (evaluation, checkpoint) that stays
  void finish();

 private:
  int64_t total_, every_;
  bool tty_;
  bool dirty_ = false;
};

std::string format_duration(double seconds);

}  // namespace nemokit::rt
