#pragma once
// SHA-256 (FIPS 180-4): OCI digests, artifact metadata, cache keys. Uses the x86 SHA
// extensions when the CPU has them (layer digests are on the hot path of every image
// conversion), a portable implementation otherwise; the choice is made once at load time.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace nemokit::rt {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Each finish* gives the digest of everything fed so far and spends the object.
  std::array<uint8_t, 32> finish();
  std::string finish_hex();     // "<64 hex>"
  std::string finish_digest();  // "sha256:<64 hex>"

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

// Hex digest ("<64 hex>") of a whole file; throws std::runtime_error naming the file.
std::string sha256_file(const std::filesystem::path& path);

// True for "sha256:" followed by 64 lowercase hex digits: the one digest form nemokit accepts
// (OCI blobs and references, artifact content digests). Such a digest is safe in a path.
bool is_sha256_digest(std::string_view text);

}  // namespace nemokit::rt
