#pragma once
// Compressed squashfs data blocks kept between image writes. Every image built FROM a base
// carries that base's files, and compressing them again is most of the time of a build whose
// steps are quick: a block whose bytes were compressed before with the same settings is copied
// from here instead.
//
// Keyed by the SHA-256 of the uncompressed block (a cryptographic hash: a hostile build cannot
// plant a block another image then picks up) under a folder per compressor setting. Each image
// write appends its new blocks to a pack file of its own; the pack is fsynced before its index
// appears (atomically), so an index never names bytes a crash lost, and a build that fails
// leaves no index. Packs not used for longest go first when the cache passes its size cap.
#include <sqfs/compressor.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nemokit::oci {

class BlockCache {
 public:
  using Key = std::array<uint8_t, 32>;

  // `dir`: the cache folder of one compressor setting (made when missing); `max_bytes`: the cap
  // on all its packs together, enforced by commit().
  BlockCache(const std::filesystem::path& dir, uint64_t max_bytes);
  ~BlockCache();  // a pack never committed is removed
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  static Key key_of(const void* data, size_t size);

  // Thread-safe (the block processor's workers call both). lookup: true and `result` set to what
  // the compressor returned for these bytes (0: they did not shrink) when known and it fits in
  // `outsize`; the compressed bytes are in `out`.
  bool lookup(const Key& key, uint8_t* out, uint32_t outsize, int32_t& result);
  void insert(const Key& key, const uint8_t* data, int32_t result);

  // Makes this write's new blocks durable and visible to later writes, then prunes.
  void commit();

  uint64_t hits() const { return hits_.load(); }
  uint64_t misses() const { return misses_.load(); }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    uint32_t pack;  // index into packs_
    uint64_t offset;
    uint32_t size;     // compressed bytes in the pack
    int32_t result;    // what do_block returned (size, or 0)
  };
  struct Pack {
    Pack(std::filesystem::path p, int f) : path(std::move(p)), fd(f) {}
    std::filesystem::path path;
    int fd;
    std::atomic<bool> used{false};  // set by the workers, read by commit()
  };
  void load_index(const std::filesystem::path& index);
  void prune();

  std::filesystem::path dir_;
  uint64_t max_bytes_;
  std::deque<Pack> packs_;  // fixed after the constructor: read without a lock
  std::unordered_map<Key, Entry, KeyHash> known_;

  // This write's own pack, appended by the workers.
  std::filesystem::path new_pack_;
  int new_fd_ = -1;
  std::atomic<uint64_t> new_end_{0};
  std::mutex new_mutex_;
  std::unordered_map<Key, Entry, KeyHash> added_;
  std::atomic<bool> writable_{true};  // false after a write failed: the cache then only serves
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

// A compressor that answers from `cache` and asks `inner` (owned) otherwise; libsquashfs copies
// it once per worker thread. The caller keeps `inner`'s settings and the cache folder in step.
sqfs_compressor_t* make_caching_compressor(sqfs_compressor_t* inner, std::shared_ptr<BlockCache> cache);

}  // namespace nemokit::oci
