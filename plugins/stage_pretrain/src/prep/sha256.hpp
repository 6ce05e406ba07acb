#pragma once
// SHA-256 (FIPS 180-4) for the digests of source files recorded in artifact metadata.

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace nemokit::pretrain {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> finish();
  std::string finish_hex();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Hex digest of a whole file; throws std::runtime_error naming the file.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace nemokit::pretrain
