#pragma once
// What COPY and ADD do to the root filesystem of a stage, with Docker's rules:
// a folder source copies its contents, several sources need a folder
// destination ending in '/', ADD unpacks local tar archives, new files belong
// to root unless --chown (or, from another stage, keep their owners).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nemokit/dockerfile/context.hpp"

namespace nemokit::dockerfile {

struct CopySource {
  std::filesystem::path root;  // host folder the path lives in (context or a stage's root)
  std::string rel;             // cleaned path inside root, "" for root itself
  bool is_heredoc = false;     // COPY <<EOF: `content` becomes the file `rel`
  std::string content;
  bool never_unpack = false;  // ADD of a URL: a downloaded archive stays a file, as in Docker
};

struct CopyOptions {
  std::optional<std::string> chown;  // user[:group], resolved in the destination root
  std::optional<unsigned> chmod;
  bool keep_owner = false;       // --from sources without --chown
  bool unpack_archives = false;  // ADD
  const IgnoreRules* ignore = nullptr;
  std::string what;  // "file:line:col: COPY" for messages
};

// `dest` is absolute inside `dest_root` (relative ones are joined to WORKDIR
// by the caller); `dest_is_dir` when it ended with '/'.
void copy_into_root(const std::filesystem::path& dest_root, const std::vector<CopySource>& sources, const std::string& dest,
                    bool dest_is_dir, const CopyOptions& options);

// Parses a --chmod value (octal).
unsigned parse_chmod(const std::string& value, const Location& where);

}  // namespace nemokit::dockerfile
