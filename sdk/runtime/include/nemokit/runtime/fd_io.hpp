#pragma once
// Writing to and draining file descriptors: the one write loop and the one pipe pump that the
// core, the plugins and the tests share.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string_view>

namespace nemokit::rt {

// Writes all of `size` bytes to fd, retrying short writes and EINTR. False, with errno set, when
// a write fails (a write of nothing counts as EIO). Allocates nothing and throws nothing, so a
// child may use it between fork and exec.
bool write_all(int fd, const void* bytes, size_t size) noexcept;
inline bool write_all(int fd, std::string_view text) noexcept { return write_all(fd, text.data(), text.size()); }

// The same, throwing std::runtime_error "<path>: write failed: <reason>" when a write fails.
void write_all(int fd, const void* bytes, size_t size, const std::filesystem::path& path);

// Reads every descriptor of `fds` until each reaches end of file (or a read error), handing
// each chunk to `sink(index into fds, data, size)` as it arrives; poll() waits on all of them,
// so a full pipe never blocks another. The descriptors stay open.
using PumpSink = std::function<void(size_t index, const char* data, size_t size)>;
void pump_until_eof(std::span<const int> fds, const PumpSink& sink);

}  // namespace nemokit::rt
