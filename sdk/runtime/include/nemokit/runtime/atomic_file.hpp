// Files and folders that appear all at once: written under a temporary name in the same
// folder, flushed to disk, then renamed over the final name, and the folder flushed too, so a
// reader (or a restart after a crash) sees either the old contents or the whole new ones.
// Every error is a std::runtime_error whose message names the path at fault.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string_view>

#include "nemokit/runtime/fd_io.hpp"  // write_all

namespace nemokit::rt {

// Writes `bytes` to `path` atomically: a temporary beside it, fsync, rename, fsync of the
// folder. Creates missing parent folders. The file gets exactly `mode` (the umask does not
// apply). On failure the temporary is removed and any older file is left as it was.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes, unsigned mode = 0644);

// A unique temporary path in the folder of `final_path` ("<name>.tmp-<pid>-<n>").
std::filesystem::path temp_path_beside(const std::filesystem::path& final_path);

// Removes the temp_path_beside() temporaries ("NAME.tmp-PID-N") in `dir` whose process is gone:
// what a killed writer left behind (a live process's stay). Errors are ignored: it is tidying.
void remove_dead_temporaries(const std::filesystem::path& dir);

// fsyncs `tmp` (already written and closed), renames it to `final_path` and fsyncs the folder.
void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

// fsyncs a file or a folder. Filesystems that refuse fsync on folders (EINVAL, EROFS) are
// accepted: a rename there is atomic all the same.
void fsync_path(const std::filesystem::path& path);

// Replaces `final_dir` by `tmp_dir` (both in the same parent) with one rename (an exchange
// when final_dir exists, after which the old contents are removed), so a reader sees either
// the old folder or the new one.
void replace_dir_atomic(const std::filesystem::path& tmp_dir, const std::filesystem::path& final_dir);

// An empty "<final_dir>.tmp" beside final_dir to fill and hand to replace_dir_atomic; one left
// over from an interrupted write is removed first.
std::filesystem::path fresh_temp_dir(const std::filesystem::path& final_dir);

// A file that appears at its final path only when complete, for writers that need a path
// rather than a buffer (libraries writing a file themselves, downloads): create the object,
// write temp_path() any way you like, then commit(). The temporary is a hidden file in the
// destination's folder (".<name>.partial-<host>-<pid>-XXXXXX", mode 0644). Destroyed without
// commit(), it removes the temporary and leaves any older file untouched; the temporaries of
// processes of this host that are gone (killed writers) are removed when the next one starts.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::filesystem::path dest);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  // fsyncs the temporary, renames it over the destination and fsyncs the folder.
  void commit();

 private:
  std::filesystem::path dest_, temp_;
  bool committed_ = false;
};

}  // namespace nemokit::rt
