#include "nemokit/oci/block_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::oci {
namespace fs = std::filesystem;

namespace {

// One index record: key, offset, size and do_block's result, little-endian as written by this
// machine (the cache never travels).
struct Record {
  uint8_t key[32];
  uint64_t offset;
  uint32_t size;
  int32_t result;
};
static_assert(sizeof(Record) == 48);

bool pwrite_all(int fd, const uint8_t* data, size_t size, off_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n, size -= size_t(n), offset += n;
  }
  return true;
}

}  // namespace

size_t BlockCache::KeyHash::operator()(const Key& k) const {
  size_t h;
  std::memcpy(&h, k.data(), sizeof h);  // already uniformly random
  return h;
}

BlockCache::Key BlockCache::key_of(const void* data, size_t size) {
  rt::Sha256 h;
  h.update(data, size);
  return h.finish();
}

BlockCache::BlockCache(const fs::path& dir, uint64_t max_bytes) : dir_(dir), max_bytes_(max_bytes) {
  fs::create_directories(dir_);
  for (auto& e : fs::directory_iterator(dir_))
    if (e.path().extension() == ".idx") load_index(e.path());
  std::random_device rd;
  new_pack_ = dir_ / (std::to_string(::time(nullptr)) + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + ".pack");
  new_fd_ = ::open(new_pack_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (new_fd_ < 0) writable_ = false;  // a read-only cache still serves
}

BlockCache::~BlockCache() {
  for (Pack& p : packs_)
    if (p.fd >= 0) ::close(p.fd);
  if (new_fd_ >= 0) {
    ::close(new_fd_);
    std::error_code ec;
    fs::remove(new_pack_, ec);
  }
}

// An index whose pack is missing or shorter than the index says is skipped whole: its records
// cannot be trusted to name whole blocks.
void BlockCache::load_index(const fs::path& index) {
  std::ifstream in(index, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return;
  if (bytes.size() % sizeof(Record) != 0) return;
  fs::path pack_path = index;
  pack_path.replace_extension(".pack");
  int fd = ::open(pack_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return;
  }
  const size_t n = bytes.size() / sizeof(Record);
  std::vector<Record> records(n);
  std::memcpy(records.data(), bytes.data(), bytes.size());
  for (const Record& r : records)
    if (r.offset + r.size > uint64_t(st.st_size) || r.result < 0 || uint32_t(r.result) != r.size) {
      ::close(fd);
      return;
    }
  const uint32_t pack = uint32_t(packs_.size());
  packs_.emplace_back(pack_path, fd);
  for (const Record& r : records) {
    Key k;
    std::memcpy(k.data(), r.key, k.size());
    known_.emplace(k, Entry{pack, r.offset, r.size, r.result});
  }
}

bool BlockCache::lookup(const Key& key, uint8_t* out, uint32_t outsize, int32_t& result) {
  auto it = known_.find(key);
  if (it == known_.end() || it->second.size > outsize) {
    misses_.fetch_add(1);
    return false;
  }
  const Entry& e = it->second;
  if (e.size > 0) {
    ssize_t got = ::pread(packs_[e.pack].fd, out, e.size, off_t(e.offset));
    if (got != ssize_t(e.size)) {
      misses_.fetch_add(1);
      return false;
    }
  }
  packs_[e.pack].used = true;  // only ever set to true: a benign race
  result = e.result;
  hits_.fetch_add(1);
  return true;
}

void BlockCache::insert(const Key& key, const uint8_t* data, int32_t result) {
  if (!writable_ || result < 0) return;
  const uint32_t size = uint32_t(result);
  const uint64_t offset = new_end_.fetch_add(size);
  if (size > 0 && !pwrite_all(new_fd_, data, size, off_t(offset))) {
    writable_ = false;  // e.g. the disk is full: the build goes on without caching
    return;
  }
  std::lock_guard<std::mutex> lock(new_mutex_);
  added_.emplace(key, Entry{0, offset, size, result});
}

void BlockCache::commit() {
  if (new_fd_ < 0) return;
  std::vector<Record> records;
  {
    std::lock_guard<std::mutex> lock(new_mutex_);
    records.reserve(added_.size());
    for (auto& [k, e] : added_) {
      Record r{};
      std::memcpy(r.key, k.data(), k.size());
      r.offset = e.offset;
      r.size = e.size;
      r.result = e.result;
      records.push_back(r);
    }
  }
  const bool keep = writable_ && !records.empty() && ::fsync(new_fd_) == 0;
  ::close(new_fd_);
  new_fd_ = -1;
  if (keep) {
    fs::path index = new_pack_;
    index.replace_extension(".idx");
    try {
      rt::write_file_atomic(index, std::string_view(reinterpret_cast<const char*>(records.data()),
                                                    records.size() * sizeof(Record)));
    } catch (const std::exception&) {
      std::error_code ec;
      fs::remove(new_pack_, ec);
    }
  } else {
    std::error_code ec;
    fs::remove(new_pack_, ec);
  }
  prune();
}

// Packs used by this write are touched first, so the oldest modification time is the pack
// unused for longest; those go until the rest fit under the cap. A pack without an index (a
// write that is running, or one that died) is left for a day before it counts as litter.
void BlockCache::prune() {
  for (const Pack& p : packs_)
    if (p.used) ::utimensat(AT_FDCWD, p.path.c_str(), nullptr, 0);
  struct Candidate {
    fs::file_time_type time;
    fs::path pack;
    uint64_t bytes;
  };
  std::vector<Candidate> all;
  uint64_t total = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() != ".pack") continue;
    fs::path index = e.path();
    index.replace_extension(".idx");
    auto t = fs::last_write_time(e.path(), ec);
    if (ec) continue;
    if (!fs::exists(index)) {
      if (now - t > std::chrono::hours(24)) fs::remove(e.path(), ec);
      continue;
    }
    uint64_t bytes = fs::file_size(e.path(), ec) + fs::file_size(index, ec);
    total += bytes;
    all.push_back({t, e.path(), bytes});
  }
  std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) { return a.time < b.time; });
  for (const Candidate& c : all) {
    if (total <= max_bytes_) break;
    fs::path index = c.pack;
    index.replace_extension(".idx");
    fs::remove(index, ec);  // the index first: a pack without one is never read
    fs::remove(c.pack, ec);
    total -= c.bytes;
  }
}

namespace {

// libsquashfs calls through `base`, which must come first.
struct CachingCompressor {
  sqfs_compressor_t base;
  sqfs_compressor_t* inner;
  std::shared_ptr<BlockCache> cache;
};

CachingCompressor* self_of(const void* p) { return static_cast<CachingCompressor*>(const_cast<void*>(p)); }

void destroy(sqfs_object_t* obj) {
  CachingCompressor* self = self_of(obj);
  sqfs_destroy(self->inner);
  delete self;
}

sqfs_object_t* copy(const sqfs_object_t* obj) {
  const CachingCompressor* self = self_of(obj);
  auto* inner = static_cast<sqfs_compressor_t*>(sqfs_copy(self->inner));
  if (!inner) return nullptr;
  return reinterpret_cast<sqfs_object_t*>(make_caching_compressor(inner, self->cache));
}

void get_configuration(const sqfs_compressor_t* cmp, sqfs_compressor_config_t* cfg) {
  const CachingCompressor* self = self_of(cmp);
  self->inner->get_configuration(self->inner, cfg);
}

int write_options(sqfs_compressor_t* cmp, sqfs_file_t* file) {
  CachingCompressor* self = self_of(cmp);
  return self->inner->write_options(self->inner, file);
}

int read_options(sqfs_compressor_t* cmp, sqfs_file_t* file) {
  CachingCompressor* self = self_of(cmp);
  return self->inner->read_options(self->inner, file);
}

// Never throws into libsquashfs: a cache that fails is a cache that misses.
sqfs_s32 do_block(sqfs_compressor_t* cmp, const sqfs_u8* in, sqfs_u32 size, sqfs_u8* out, sqfs_u32 outsize) {
  CachingCompressor* self = self_of(cmp);
  BlockCache::Key key{};
  bool keyed = false;
  try {
    key = BlockCache::key_of(in, size);
    keyed = true;
    int32_t result;
    if (self->cache->lookup(key, out, outsize, result)) return result;
  } catch (...) {
  }
  const sqfs_s32 result = self->inner->do_block(self->inner, in, size, out, outsize);
  if (keyed && result >= 0) {
    try {
      self->cache->insert(key, out, result);
    } catch (...) {
    }
  }
  return result;
}

}  // namespace

sqfs_compressor_t* make_caching_compressor(sqfs_compressor_t* inner, std::shared_ptr<BlockCache> cache) {
  auto* self = new CachingCompressor{};
  self->base.base.destroy = destroy;
  self->base.base.copy = copy;
  self->base.get_configuration = get_configuration;
  self->base.write_options = write_options;
  self->base.read_options = read_options;
  self->base.do_block = do_block;
  self->inner = inner;
  self->cache = std::move(cache);
  return &self->base;
}

}  // namespace nemokit::oci
