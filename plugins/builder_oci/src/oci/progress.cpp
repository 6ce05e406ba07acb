#include "nemokit/oci/progress.hpp"

#include <cstdio>

namespace nemokit::oci {

Progress::Progress(bool enabled) : enabled_(enabled) { start_ = last_ = std::chrono::steady_clock::now(); }

Progress::~Progress() { done(); }

void Progress::layer(size_t index, size_t count) {
    index_ = index;
    count_ = count;
    draw(true);
}

void Progress::bytes(uint64_t total_read) {
    bytes_ = total_read;
    draw(false);
}

void Progress::draw(bool force) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double mb = double(bytes_) / 1e6;
    std::fprintf(stderr, "\r\033[Klayer %zu/%zu  %.1f MB read  %.1f MB/s", index_, count_, mb,
                 secs > 0 ? mb / secs : 0.0);
    std::fflush(stderr);
}

void Progress::done() {
    if (!enabled_) return;
    draw(true);
    std::fputc('\n', stderr);
    enabled_ = false;
}

}  // namespace nemokit::oci
