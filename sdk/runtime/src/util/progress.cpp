#include "nemokit/runtime/progress.hpp"

#include <unistd.h>

#include <algorithm>

namespace nemokit::rt {

std::string format_duration(double s) {
  char buf[32];
  long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

std::string training_detail(double loss, double tokens_per_s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "loss %.4f | %.0f tok/s", loss, tokens_per_s);
  return buf;
}

Progress::Progress(std::string what, int64_t total, int64_t every, Unit unit, std::FILE* out)
    : what_(std::move(what)), total_(total), every_(every), unit_(unit), out_(out), tty_(::isatty(::fileno(out))) {
  if (every_ < 1) every_ = unit_ == Unit::bytes && total_ > 0 ? std::max<int64_t>(1, total_ / 10) : 1;
}

std::string Progress::amount(int64_t n) const {
  if (unit_ == Unit::count) return std::to_string(n);
  char buf[32];
  const double v = double(n);
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kB", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld B", (long long)n);
  return buf;
}

std::string Progress::line(bool live) const {
  std::string s = what_ + " " + amount(done_) + (total_ > 0 ? "/" + amount(total_) : "");
  const double pct = total_ > 0 ? 100.0 * double(std::min(done_, total_)) / double(total_) : 0;
  char buf[64];
  if (total_ > 0 && live) {
    const int width = 20, full = int(pct / 100.0 * width + 1e-9);
    std::snprintf(buf, sizeof buf, " %3.0f%%", pct);
    s += " [" + std::string(size_t(full), '#') + std::string(size_t(width - full), '.') + "]" + buf;
  } else if (total_ > 0) {
    std::snprintf(buf, sizeof buf, " (%.0f%%)", pct);
    s += buf;
  }
  const double secs = std::chrono::duration<double>(now_ - start_).count();
  const double rate = secs > 0 && done_ > first_ ? double(done_ - first_) / secs : 0;
  std::string rate_text, eta;
  if (rate > 0) {
    if (unit_ == Unit::bytes) rate_text = amount(int64_t(rate)) + "/s";
    else if (rate >= 1) std::snprintf(buf, sizeof buf, "%.3g %s/s", rate, what_.c_str()), rate_text = buf;
    else std::snprintf(buf, sizeof buf, "%.3g s/%s", 1.0 / rate, what_.c_str()), rate_text = buf;
    if (total_ > 0) eta = format_duration(double(std::max<int64_t>(0, total_ - done_)) / rate);
  }
  if (live) {
    if (!rate_text.empty()) s += " | " + rate_text;
    if (!eta.empty()) s += " | ETA " + eta;
  } else if (!rate_text.empty()) {
    s += " " + rate_text + (eta.empty() ? "" : ", eta " + eta);
  }
  if (!detail_.empty()) s += " | " + detail_;
  return s;
}

void Progress::update(int64_t done, const std::string& detail) {
  if (finished_) return;
  now_ = std::chrono::steady_clock::now();
  if (!started_) {
    started_ = true;
    start_ = now_;
    first_ = done;
  }
  const int64_t before = done_;
  done_ = done;
  detail_ = detail;
  if (tty_) {
    // Redrawn at most ten times a second, and always at the end.
    if (dirty_ && now_ - last_draw_ < std::chrono::milliseconds(100) && !(total_ > 0 && done_ >= total_)) return;
    last_draw_ = now_;
    std::fprintf(out_, "\r\033[K%s", line(true).c_str());
    dirty_ = true;
  } else if (done_ / every_ != before / every_ || (total_ > 0 && done_ >= total_ && printed_ != done_) || printed_ < 0) {
    std::fprintf(out_, "%s\n", line(false).c_str());
    printed_ = done_;
  }
  std::fflush(out_);
}

void Progress::note(const std::string& line_text) {
  if (dirty_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s\n", line_text.c_str());
  if (dirty_) std::fprintf(out_, "%s", line(true).c_str());  // the live line again, below the note
  std::fflush(out_);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!started_) return;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s\n", line(true).c_str());
  } else if (printed_ != done_) {
    std::fprintf(out_, "%s\n", line(false).c_str());
  }
  std::fflush(out_);
}

}  // namespace nemokit::rt
