#include "nemokit/oci/layer_reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nemokit/oci/error.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::oci {
namespace {

constexpr size_t kReadChunk = 1u << 20;
constexpr size_t kPipeLimit = 32u << 20;  // decompressed bytes a layer may run ahead

// Reads the blob's byte range for libarchive and hashes what it hands out.
struct StoredSource {
  int fd = -1;
  const BlobRange* range = nullptr;
  std::atomic<uint64_t>* read = nullptr;
  rt::Sha256* hash = nullptr;
  const LayerReader::StoredSink* sink = nullptr;
  std::vector<char> buffer = std::vector<char>(kReadChunk);
  std::exception_ptr error;
  const std::atomic<bool>* cancelled = nullptr;

  static long callback(archive* a, void* self_ptr, const void** buf) {
    auto* s = static_cast<StoredSource*>(self_ptr);
    try {
      if (*s->cancelled) throw Interrupted();
      uint64_t done = s->read->load();
      size_t n = size_t(std::min<uint64_t>(s->range->size - done, s->buffer.size()));
      if (n == 0) return 0;
      read_exact_at(s->fd, s->range->offset + done, s->buffer.data(), n, s->range->name);
      s->hash->update(s->buffer.data(), n);
      if (*s->sink) (*s->sink)(s->buffer.data(), n);
      s->read->store(done + n);
      *buf = s->buffer.data();
      return long(n);
    } catch (...) {
      s->error = std::current_exception();
      archive_set_error(a, EIO, "read aborted");
      return -1;
    }
  }
};

}  // namespace

LayerReader::LayerReader(const Layer& layer, std::string label, StoredSink stored_sink)
    : layer_(layer), label_(std::move(label)), stored_sink_(std::move(stored_sink)) {
  producer_ = std::thread([this] { produce(); });
  try {
    tar_ = archive_read_new();
    archive_read_support_format_tar(tar_);
    archive_read_support_format_gnutar(tar_);
    archive_read_support_format_empty(tar_);
    if (archive_read_open(tar_, this, nullptr, &LayerReader::tar_read_cb, nullptr) != ARCHIVE_OK) fail(tar_, "not a tar stream");
  } catch (...) {
    stop();  // no destructor runs after a constructor throws; a joinable thread would abort
    throw;
  }
}

LayerReader::~LayerReader() { stop(); }

void LayerReader::stop() {
  {
    std::lock_guard<std::mutex> lock(pipe_.mutex);
    pipe_.cancelled = true;
  }
  pipe_.changed.notify_all();
  if (producer_.joinable()) producer_.join();
  if (tar_) archive_read_free(tar_);
  tar_ = nullptr;
}

void LayerReader::produce() {
  int fd = -1;
  archive* stored = nullptr;
  try {
    fd = ::open(layer_.blob.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(layer_.blob.name + ": " + std::strerror(errno));
    ::posix_fadvise(fd, off_t(layer_.blob.offset), off_t(layer_.blob.size), POSIX_FADV_SEQUENTIAL);
    rt::Sha256 stored_hash, tar_hash;
    StoredSource source;
    source.fd = fd;
    source.range = &layer_.blob;
    source.read = &stored_read_;
    source.hash = &stored_hash;
    source.sink = &stored_sink_;
    source.cancelled = &pipe_.cancelled;

    stored = archive_read_new();
    archive_read_support_filter_all(stored);
    archive_read_support_format_raw(stored);
    archive_read_support_format_empty(stored);
    // No skip callback: every byte must pass through the hash.
    auto stored_fail = [&](const char* what) {
      if (source.error) std::rethrow_exception(source.error);
      const char* msg = archive_error_string(stored);
      throw Error(label_ + " (" + layer_.blob.name + "): " + what + (msg ? std::string(": ") + msg : ""));
    };
    if (archive_read_open(stored, &source, nullptr, &StoredSource::callback, nullptr) != ARCHIVE_OK) stored_fail("cannot open");
    archive_entry* raw_entry = nullptr;
    int r = archive_read_next_header(stored, &raw_entry);
    bool compressed = false;
    if (r == ARCHIVE_OK) {
      compressed = archive_filter_code(stored, 0) != ARCHIVE_FILTER_NONE;
      for (;;) {
        const void* block;
        size_t size;
        la_int64_t offset;
        r = archive_read_data_block(stored, &block, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) stored_fail("decompression failed");
        if (compressed) tar_hash.update(block, size);
        std::vector<char> chunk(static_cast<const char*>(block), static_cast<const char*>(block) + size);
        std::unique_lock<std::mutex> lock(pipe_.mutex);
        pipe_.changed.wait(lock, [&] { return pipe_.cancelled || pipe_.queued_bytes < kPipeLimit; });
        if (pipe_.cancelled) throw Interrupted();
        pipe_.queued_bytes += chunk.size();
        pipe_.chunks.push_back(std::move(chunk));
        lock.unlock();
        pipe_.changed.notify_all();
      }
    } else if (r != ARCHIVE_EOF) {
      stored_fail("cannot read");
    }
    // Bytes after the end of the compressed stream still belong to the blob.
    std::vector<char> buffer(kReadChunk);
    while (stored_read_.load() < layer_.blob.size) {
      uint64_t done = stored_read_.load();
      size_t n = size_t(std::min<uint64_t>(layer_.blob.size - done, buffer.size()));
      read_exact_at(fd, layer_.blob.offset + done, buffer.data(), n, layer_.blob.name);
      stored_hash.update(buffer.data(), n);
      if (stored_sink_) stored_sink_(buffer.data(), n);
      stored_read_.store(done + n);
    }
    stored_digest_ = stored_hash.finish_digest();
    tar_digest_ = compressed ? tar_hash.finish_digest() : stored_digest_;
  } catch (...) {
    producer_error_ = std::current_exception();
  }
  if (stored) archive_read_free(stored);
  if (fd >= 0) ::close(fd);
  {
    std::lock_guard<std::mutex> lock(pipe_.mutex);
    pipe_.closed = true;
  }
  pipe_.changed.notify_all();
}

void LayerReader::fail(archive* a, const std::string& what) {
  if (callback_error_) std::rethrow_exception(callback_error_);
  const char* msg = a ? archive_error_string(a) : nullptr;
  throw Error(label_ + " (" + layer_.blob.name + "): " + what + (msg ? std::string(": ") + msg : ""));
}

long LayerReader::tar_read_cb(archive* a, void* self_ptr, const void** buf) {
  auto* self = static_cast<LayerReader*>(self_ptr);
  try {
    if (self->should_stop && self->should_stop()) throw Interrupted();
    std::unique_lock<std::mutex> lock(self->pipe_.mutex);
    self->pipe_.changed.wait(lock, [&] { return !self->pipe_.chunks.empty() || self->pipe_.closed; });
    if (self->pipe_.chunks.empty()) {
      // The producer's error (unreadable or undecompressable blob) wins.
      if (self->producer_error_) std::rethrow_exception(self->producer_error_);
      return 0;
    }
    self->current_chunk_ = std::move(self->pipe_.chunks.front());
    self->pipe_.chunks.pop_front();
    self->pipe_.queued_bytes -= self->current_chunk_.size();
    lock.unlock();
    self->pipe_.changed.notify_all();
    if (self->on_progress) self->on_progress(self->stored_read_.load());
    *buf = self->current_chunk_.data();
    return long(self->current_chunk_.size());
  } catch (...) {
    self->callback_error_ = std::current_exception();
    archive_set_error(a, EIO, "read aborted");
    return -1;
  }
}

archive_entry* LayerReader::next() {
  if (done_) return nullptr;
  archive_entry* entry = nullptr;
  int r = archive_read_next_header(tar_, &entry);
  if (r == ARCHIVE_EOF) {
    finish_and_verify();
    return nullptr;
  }
  if (r < ARCHIVE_WARN) fail(tar_, "corrupt tar stream");
  current_ = entry;
  return entry;
}

void LayerReader::read_data(const std::function<void(const void*, size_t)>& sink) {
  static const std::vector<char> zeros(64 * 1024, 0);
  auto fill_zeros = [&](uint64_t n) {
    while (n > 0) {
      size_t k = size_t(std::min<uint64_t>(n, zeros.size()));
      sink(zeros.data(), k);
      n -= k;
    }
  };
  uint64_t written = 0;
  for (;;) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(tar_, &block, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) fail(tar_, "corrupt entry data");
    if (uint64_t(offset) > written) {
      fill_zeros(uint64_t(offset) - written);
      written = uint64_t(offset);
    }
    if (size > 0) sink(block, size);
    written += size;
  }
  // Sparse entries may end in a hole.
  if (current_ && archive_entry_size_is_set(current_) && uint64_t(archive_entry_size(current_)) > written)
    fill_zeros(uint64_t(archive_entry_size(current_)) - written);
}

void LayerReader::finish_and_verify() {
  done_ = true;
  // The tar end marker may precede padding; the digest covers all of it, so
  // wait for the producer to get through the rest.
  {
    std::unique_lock<std::mutex> lock(pipe_.mutex);
    for (;;) {
      pipe_.chunks.clear();
      pipe_.queued_bytes = 0;
      pipe_.changed.notify_all();
      if (pipe_.closed) break;
      pipe_.changed.wait(lock, [&] { return !pipe_.chunks.empty() || pipe_.closed; });
    }
  }
  producer_.join();
  if (producer_error_) std::rethrow_exception(producer_error_);
  if (callback_error_) std::rethrow_exception(callback_error_);
  if (layer_.size && *layer_.size != layer_.blob.size)
    throw Error(label_ + ": blob " + layer_.blob.name + " is " + std::to_string(layer_.blob.size) +
                " bytes, its descriptor says " + std::to_string(*layer_.size));
  if (layer_.digest && *layer_.digest != stored_digest_)
    throw Error(label_ + ": blob " + layer_.blob.name + " has digest " + stored_digest_ + ", its descriptor says " +
                *layer_.digest);
  if (layer_.diff_id != tar_digest_)
    throw Error(label_ + ": blob " + layer_.blob.name + " uncompressed digest " + tar_digest_ +
                " does not match the config's diff_id " + layer_.diff_id);
}

EntrySpec entry_spec(archive_entry* e, const std::string& where) {
  EntrySpec s;
  const char* path = archive_entry_pathname(e);
  if (!path) path = archive_entry_pathname_utf8(e);
  if (!path) throw Error(where + ": entry without a usable path");
  s.path = path;
  s.meta.mode = uint32_t(archive_entry_perm(e)) & 07777;
  s.meta.uid = uint32_t(archive_entry_uid(e));
  s.meta.gid = uint32_t(archive_entry_gid(e));
  s.meta.mtime = archive_entry_mtime(e);
  if (archive_entry_xattr_reset(e) > 0) {
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
      s.meta.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
  }
  if (const char* hl = archive_entry_hardlink(e)) {
    s.type = NodeType::Regular;
    s.hardlink_target = hl;
    return s;
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      s.type = NodeType::Regular;
      break;
    case AE_IFDIR:
      s.type = NodeType::Directory;
      break;
    case AE_IFLNK: {
      s.type = NodeType::Symlink;
      const char* t = archive_entry_symlink(e);
      if (!t) t = archive_entry_symlink_utf8(e);
      s.symlink_target = t ? t : "";
      break;
    }
    case AE_IFCHR:
      s.type = NodeType::CharDevice;
      break;
    case AE_IFBLK:
      s.type = NodeType::BlockDevice;
      break;
    case AE_IFIFO:
      s.type = NodeType::Fifo;
      break;
    case AE_IFSOCK:
      s.type = NodeType::Socket;
      break;
    default:
      throw Error(where + ": entry '" + s.path + "' has an unknown type");
  }
  if (s.type == NodeType::CharDevice || s.type == NodeType::BlockDevice) {
    s.dev_major = uint32_t(archive_entry_rdevmajor(e));
    s.dev_minor = uint32_t(archive_entry_rdevminor(e));
  }
  return s;
}

}  // namespace nemokit::oci
