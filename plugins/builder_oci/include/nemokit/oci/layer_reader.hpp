#pragma once
// Streams the entries of one layer blob (tar, tar+gzip, tar+zstd, detected by
// content) while hashing both the stored bytes and the uncompressed tar, so
// the blob digest/size and the config's diff_id are checked in the same pass.
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "nemokit/oci/image.hpp"
#include "nemokit/oci/sha256.hpp"

struct archive;
struct archive_entry;

namespace nemokit::oci {

class LayerReader {
public:
    // `label` names the layer in messages ("layer 2/3 (sha256:..)").
    LayerReader(const Layer& layer, std::string label);
    ~LayerReader();
    LayerReader(const LayerReader&) = delete;
    LayerReader& operator=(const LayerReader&) = delete;

    // The next entry, or nullptr at the end of the layer; reaching the end checks
    // the digests and size and throws on a mismatch.
    archive_entry* next();

    // Delivers the current entry's contents in order (holes of sparse entries as
    // zeros); exactly archive_entry_size() bytes.
    void read_data(const std::function<void(const void*, size_t)>& sink);

    uint64_t stored_bytes_read() const { return stored_read_; }
    const std::string& label() const { return label_; }

    // Called with the number of stored bytes read so far (progress display).
    std::function<void(uint64_t)> on_progress;
    // Polled between reads; when it returns true the read fails with Interrupted.
    std::function<bool()> should_stop;

private:
    static long stored_read_cb(archive*, void* self, const void** buf);
    static long tar_read_cb(archive*, void* self, const void** buf);
    [[noreturn]] void fail(archive* a, const std::string& what);
    void finish_and_verify();

    Layer layer_;
    std::string label_;
    int fd_ = -1;
    archive* stored_ = nullptr;  // decompresses the blob ("raw" format)
    archive* tar_ = nullptr;     // parses the decompressed stream
    archive_entry* current_ = nullptr;
    bool compressed_ = true;
    bool empty_ = false;
    bool done_ = false;
    uint64_t stored_read_ = 0;
    uint64_t tar_bytes_ = 0;
    std::vector<char> buffer_;
    Sha256 stored_hash_;
    Sha256 tar_hash_;
    std::exception_ptr callback_error_;
};

}  // namespace nemokit::oci
