#pragma once
// Progress of a long operation (data prep, an image's layers, training, evaluation), the one
// display every part of nemokit uses. On a terminal: one line redrawn in place, at most ten times
// a second, with a bar, the rate and the time left:
//
//   step 30/100 [######..............]  30% | 2.1 step/s | ETA 33s | loss 2.3456 | 1234 tok/s
//
// Elsewhere (a log file, a Slurm job's output): a plain line each time the count passes a
// multiple of `every`, and at the end, so that logs stay readable:
//
//   step 30/100 (30%) 2.1 step/s, eta 33s | loss 2.3456 | 1234 tok/s
//
// The rate is the average since the first update (counted from where that update stood, so that
// a resumed run's rate is its own and a slow first step, which warms up, is left out).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace nemokit::rt {

class Progress {
 public:
  enum class Unit { count, bytes };  // bytes are shown as kB, MB, GB
  // `what` names the count ("step", "document", "read"); `total` is where it ends (0: not
  // known: no bar, no ETA); off a terminal a line each `every` units (bytes: every 0 means each
  // tenth of the total). `out` is stderr unless a test gives another stream.
  Progress(std::string what, int64_t total, int64_t every = 1, Unit unit = Unit::count, std::FILE* out = stderr);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  // The count now, and what else to show after the rate ("loss 2.3456 | 1234 tok/s").
  void update(int64_t done, const std::string& detail = "");
  void set_total(int64_t total) { total_ = total; }
  // A line that stays (an evaluation, a checkpoint), printed above the live one.
  void note(const std::string& line);
  // Ends the live line (its last state stays on the screen); off a terminal, prints the last
  // count when no line has shown it yet. Called again, or by the destructor, it does nothing.
  void finish();

  bool on_terminal() const { return tty_; }

 private:
  std::string line(bool live) const;
  std::string amount(int64_t n) const;

  std::string what_;
  int64_t total_, every_;
  Unit unit_;
  std::FILE* out_;
  bool tty_;
  bool dirty_ = false, finished_ = false, started_ = false;
  int64_t done_ = 0, first_ = 0, printed_ = -1;
  std::string detail_;
  std::chrono::steady_clock::time_point start_, now_, last_draw_;
};

// "42s", "3m07s", "2h05m".
std::string format_duration(double seconds);

// What training shows after its step count: "loss 2.3456 | 1234 tok/s".
std::string training_detail(double loss, double tokens_per_s);

}  // namespace nemokit::rt
