#pragma once
// SHA-256 for OCI digests. Uses the x86 SHA extensions when the CPU has them
// (layer digests are on the hot path of every conversion), a portable
// implementation otherwise.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nemokit::oci {

class Sha256 {
public:
    Sha256();
    void update(const void* data, size_t size);
    std::array<uint8_t, 32> finish();
    // "sha256:<64 hex>" of everything fed so far; the object is spent afterwards.
    std::string finish_digest();

    static std::string hex(const std::array<uint8_t, 32>& digest);
    static std::string digest_of(std::string_view data);  // "sha256:..."
    static bool hardware_accelerated();

private:
    void compress(const uint8_t* blocks, size_t count);
    uint32_t state_[8];
    uint8_t buffer_[64];
    size_t buffered_ = 0;
    uint64_t total_ = 0;
};

}  // namespace nemokit::oci
