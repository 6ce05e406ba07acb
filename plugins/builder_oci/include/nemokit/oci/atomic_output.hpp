#pragma once
// A file that appears at its final path only when complete: written under a
// temporary name in the same folder, synced, then renamed over the old one.
// Destroyed without commit(), it removes the temporary and leaves any older
// file untouched.
#include <filesystem>

namespace nemokit::oci {

class AtomicOutput {
public:
    explicit AtomicOutput(std::filesystem::path dest);
    ~AtomicOutput();
    AtomicOutput(const AtomicOutput&) = delete;
    AtomicOutput& operator=(const AtomicOutput&) = delete;

    const std::filesystem::path& temp_path() const { return temp_; }
    void commit();

private:
    std::filesystem::path dest_, temp_;
    bool committed_ = false;
};

}  // namespace nemokit::oci
