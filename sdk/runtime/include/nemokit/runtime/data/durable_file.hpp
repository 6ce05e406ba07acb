#pragma once
// Small POSIX helpers for files that must appear whole or not at all: a temporary beside the
// final path, fsync, rename, fsync of the folder.

#include <filesystem>
#include <string_view>

namespace nemokit::rt {

// A unique temporary path in the folder of `final_path` ("<name>.tmp-<pid>-<n>").
std::filesystem::path temp_path_beside(const std::filesystem::path& final_path);

// Writes all of `bytes` to fd; throws std::runtime_error naming `path` on failure.
void write_all(int fd, const void* bytes, size_t size, const std::filesystem::path& path);

// fsyncs `tmp`, renames it to `final_path` and fsyncs the folder.
void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

// Writes `contents` to `path` atomically.
void write_file_atomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace nemokit::rt
