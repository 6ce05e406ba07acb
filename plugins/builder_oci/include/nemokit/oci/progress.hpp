#pragma once
// One status line on a terminal (layer, bytes read, rate); silent elsewhere.
#include <chrono>
#include <cstdint>
#include <string>

namespace nemokit::oci {

class Progress {
public:
    explicit Progress(bool enabled);
    ~Progress();
    void layer(size_t index, size_t count);
    void bytes(uint64_t total_read);
    void done();

private:
    void draw(bool force);
    bool enabled_;
    size_t index_ = 0, count_ = 0;
    uint64_t bytes_ = 0;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace nemokit::oci
