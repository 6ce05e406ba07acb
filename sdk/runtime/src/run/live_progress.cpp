#include "nemokit/runtime/run/live_progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace nemokit::rt {

std::string format_duration(double s) {
  char buf[32];
  long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

LiveProgress::LiveProgress(int64_t total_steps, int64_t every)
    : total_(total_steps), every_(every < 1 ? 1 : every), tty_(::isatty(STDERR_FILENO)) {}

void LiveProgress::update(int64_t step, float loss, double tokens_per_s, double seconds_per_step) {
  std::string eta = format_duration(seconds_per_step * double(total_ - step));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K step %lld/%lld | loss %.4f | %.0f tok/s | ETA %s", (long long)step, (long long)total_,
                 loss, tokens_per_s, eta.c_str());
    dirty_ = true;
  } else if (step % every_ == 0 || step == total_) {
    std::fprintf(stderr, "step %lld/%lld loss %.4f tok/s %.0f eta %s\n", (long long)step, (long long)total_, loss,
                 tokens_per_s, eta.c_str());
  }
  std::fflush(stderr);
}

void LiveProgress::note(const std::string& line) {
  if (dirty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
  dirty_ = false;
}

void LiveProgress::finish() {
  if (dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

}  // namespace nemokit::rt
