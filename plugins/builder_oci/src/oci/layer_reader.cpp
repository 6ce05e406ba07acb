#include "nemokit/oci/layer_reader.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nemokit/oci/error.hpp"

namespace nemokit::oci {
namespace {
constexpr size_t kReadChunk = 1u << 20;
}

LayerReader::LayerReader(const Layer& layer, std::string label)
    : layer_(layer), label_(std::move(label)), buffer_(kReadChunk) {
    fd_ = ::open(layer_.blob.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error(layer_.blob.name + ": " + std::strerror(errno));
    ::posix_fadvise(fd_, off_t(layer_.blob.offset), off_t(layer_.blob.size), POSIX_FADV_SEQUENTIAL);

    stored_ = archive_read_new();
    archive_read_support_filter_all(stored_);
    archive_read_support_format_raw(stored_);
    // No skip callback: every byte must pass through the hash.
    if (archive_read_open(stored_, this, nullptr, &LayerReader::stored_read_cb, nullptr) != ARCHIVE_OK)
        fail(stored_, "cannot open");
    archive_entry* raw_entry = nullptr;
    int r = archive_read_next_header(stored_, &raw_entry);
    if (r == ARCHIVE_EOF) {
        empty_ = true;
        return;
    }
    if (r != ARCHIVE_OK) fail(stored_, "cannot read");
    compressed_ = archive_filter_code(stored_, 0) != ARCHIVE_FILTER_NONE;

    tar_ = archive_read_new();
    archive_read_support_format_tar(tar_);
    archive_read_support_format_gnutar(tar_);
    if (archive_read_open(tar_, this, nullptr, &LayerReader::tar_read_cb, nullptr) != ARCHIVE_OK)
        fail(tar_, "cannot open tar stream");
}

LayerReader::~LayerReader() {
    if (tar_) archive_read_free(tar_);
    if (stored_) archive_read_free(stored_);
    if (fd_ >= 0) ::close(fd_);
}

void LayerReader::fail(archive* a, const std::string& what) {
    if (callback_error_) std::rethrow_exception(callback_error_);
    const char* msg = a ? archive_error_string(a) : nullptr;
    throw Error(label_ + " (" + layer_.blob.name + "): " + what + (msg ? std::string(": ") + msg : ""));
}

long LayerReader::stored_read_cb(archive* a, void* self_ptr, const void** buf) {
    auto* self = static_cast<LayerReader*>(self_ptr);
    try {
        if (self->should_stop && self->should_stop()) throw Interrupted();
        uint64_t left = self->layer_.blob.size - self->stored_read_;
        size_t n = size_t(std::min<uint64_t>(left, self->buffer_.size()));
        if (n == 0) return 0;
        read_exact_at(self->fd_, self->layer_.blob.offset + self->stored_read_, self->buffer_.data(), n,
                      self->layer_.blob.name);
        self->stored_hash_.update(self->buffer_.data(), n);
        self->stored_read_ += n;
        if (self->on_progress) self->on_progress(self->stored_read_);
        *buf = self->buffer_.data();
        return long(n);
    } catch (...) {
        self->callback_error_ = std::current_exception();
        archive_set_error(a, EIO, "read aborted");
        return -1;
    }
}

long LayerReader::tar_read_cb(archive* a, void* self_ptr, const void** buf) {
    auto* self = static_cast<LayerReader*>(self_ptr);
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(self->stored_, &block, &size, &offset);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) {
        archive_set_error(a, EIO, "%s", archive_error_string(self->stored_) ? archive_error_string(self->stored_)
                                                                           : "decompression failed");
        return -1;
    }
    if (self->compressed_) self->tar_hash_.update(block, size);
    self->tar_bytes_ += size;
    *buf = block;
    return long(size);
}

archive_entry* LayerReader::next() {
    if (done_) return nullptr;
    if (empty_) {
        finish_and_verify();
        return nullptr;
    }
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
    // The tar end marker may precede padding; the digest covers all of it.
    if (stored_ && !empty_) {
        for (;;) {
            const void* block;
            size_t size;
            la_int64_t offset;
            int r = archive_read_data_block(stored_, &block, &size, &offset);
            if (r == ARCHIVE_EOF) break;
            if (r < ARCHIVE_WARN) fail(stored_, "decompression failed");
            if (compressed_) tar_hash_.update(block, size);
            tar_bytes_ += size;
        }
    }
    if (callback_error_) std::rethrow_exception(callback_error_);
    // Bytes after the end of the compressed stream still belong to the blob.
    while (stored_read_ < layer_.blob.size) {
        size_t n = size_t(std::min<uint64_t>(layer_.blob.size - stored_read_, buffer_.size()));
        read_exact_at(fd_, layer_.blob.offset + stored_read_, buffer_.data(), n, layer_.blob.name);
        stored_hash_.update(buffer_.data(), n);
        stored_read_ += n;
    }
    std::string stored_digest = stored_hash_.finish_digest();
    std::string tar_digest = compressed_ ? tar_hash_.finish_digest() : stored_digest;
    if (layer_.size && *layer_.size != layer_.blob.size)
        throw Error(label_ + ": blob " + layer_.blob.name + " is " + std::to_string(layer_.blob.size) +
                    " bytes, its descriptor says " + std::to_string(*layer_.size));
    if (layer_.digest && *layer_.digest != stored_digest)
        throw Error(label_ + ": blob " + layer_.blob.name + " has digest " + stored_digest +
                    ", its descriptor says " + *layer_.digest);
    if (layer_.diff_id != tar_digest)
        throw Error(label_ + ": blob " + layer_.blob.name + " uncompressed digest " + tar_digest +
                    " does not match the config's diff_id " + layer_.diff_id);
}

}  // namespace nemokit::oci
