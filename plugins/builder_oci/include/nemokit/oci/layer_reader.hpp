#pragma once
// Streams the entries of one layer blob (tar, tar+gzip, tar+zstd, detected by
// content) while hashing both the stored bytes and the uncompressed tar, so
// the blob digest/size and the config's diff_id are checked in the same pass.
//
// Reading, hashing and decompressing run on a thread of their own that starts
// when the reader is made, so the layers below the one being applied can
// decompress ahead (gzip runs at ~200 MB/s per core) while the caller parses
// tar entries and feeds the squashfs writer.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/merged_tree.hpp"

struct archive;
struct archive_entry;

namespace nemokit::oci {

class LayerReader {
 public:
  // The blob's bytes in order, as the reading thread reads them (a caller keeping a copy of the
  // blob writes them out here instead of reading the blob a second time).
  using StoredSink = std::function<void(const void*, size_t)>;

  // `label` names the layer in messages ("layer 2/3 (sha256:..)").
  LayerReader(const Layer& layer, std::string label, StoredSink stored_sink = {});
  ~LayerReader();
  LayerReader(const LayerReader&) = delete;
  LayerReader& operator=(const LayerReader&) = delete;

  // The next entry, or nullptr at the end of the layer; reaching the end checks
  // the digests and size and throws on a mismatch.
  archive_entry* next();

  // Delivers the current entry's contents in order (holes of sparse entries as
  // zeros); exactly archive_entry_size() bytes.
  void read_data(const std::function<void(const void*, size_t)>& sink);

  uint64_t stored_bytes_read() const { return stored_read_.load(); }
  // "sha256:..." of the blob, once next() has returned nullptr.
  const std::string& stored_digest() const { return stored_digest_; }
  const std::string& label() const { return label_; }

  // Called with the number of stored bytes read so far (progress display).
  std::function<void(uint64_t)> on_progress;
  // Polled between reads; when it returns true the read fails with Interrupted.
  std::function<bool()> should_stop;

 private:
  // Decompressed bytes handed from the reading thread to the tar parser.
  struct Pipe {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::vector<char>> chunks;
    size_t queued_bytes = 0;
    bool closed = false;                 // the producer is done (or failed)
    std::atomic<bool> cancelled{false};  // the consumer went away
  };

  void produce();  // the reading thread
  void stop();     // cancels and joins the reading thread, frees the tar reader
  static long tar_read_cb(archive*, void* self, const void** buf);
  [[noreturn]] void fail(archive* a, const std::string& what);
  void finish_and_verify();

  Layer layer_;
  std::string label_;
  StoredSink stored_sink_;
  Pipe pipe_;
  std::thread producer_;
  std::exception_ptr producer_error_;  // set before the pipe closes
  std::string stored_digest_, tar_digest_;
  std::atomic<uint64_t> stored_read_{0};

  archive* tar_ = nullptr;
  archive_entry* current_ = nullptr;
  std::vector<char> current_chunk_;  // what libarchive is parsing now
  std::exception_ptr callback_error_;
  bool done_ = false;
};

// What a tar entry asks of the merged tree: its path, type, owner, mode, mtime, xattrs, link or
// device numbers. Throws Error naming `where` for an entry without a usable path or type.
EntrySpec entry_spec(archive_entry* e, const std::string& where);

}  // namespace nemokit::oci
