#pragma once
// Writing to file descriptors: the one write loop that the core, the plugins and the tests share.

#include <cstddef>
#include <filesystem>
#include <string_view>

namespace nemokit::rt {

// Writes all of `size` bytes to fd, retrying short writes and EINTR. False, with errno set, when
// a write fails (a write of nothing counts as EIO). Allocates nothing and throws nothing, so a
// child may use it between fork and exec.
bool write_all(int fd, const void* bytes, size_t size) noexcept;
inline bool write_all(int fd, std::string_view text) noexcept { return write_all(fd, text.data(), text.size()); }

// The same, throwing std::runtime_error "<path>: write failed: <reason>" when a write fails.
void write_all(int fd, const void* bytes, size_t size, const std::filesystem::path& path);

}  // namespace nemokit::rt
