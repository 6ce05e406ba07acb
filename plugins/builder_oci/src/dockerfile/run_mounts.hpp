#pragma once
// RUN --mount, as BuildKit reads it: type=bind|cache|tmpfs|secret with their
// options. Parsing (with the Dockerfile's location in every error) and the
// host side of a cache mount. Private to the builder (src/dockerfile).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/context.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/sandbox.hpp"
#include "nemokit/dockerfile/words.hpp"

namespace nemokit::dockerfile {

struct RunMount {
  enum class Type { bind, cache, tmpfs, secret };
  Type type = Type::bind;
  std::string target;              // absolute inside the root (relative ones are joined to WORKDIR); secret: may be empty
  std::string source;              // bind: a path inside the context or `from`
  std::string from;                // bind: a stage or image; empty: the build context
  bool read_only = true;           // bind: true unless rw; cache: false unless ro
  std::string id;                  // cache: the cache's name (default: target); secret: which secret
  std::string sharing = "shared";  // cache: shared | private | locked
  unsigned mode = 0755;            // cache: the folder's mode when made; secret: the file's (0400)
  unsigned uid = 0, gid = 0;
  std::string env;        // secret: also (or only) given as this environment variable
  bool required = false;  // secret: a missing secret is an error, not an absent file
  uint64_t size = 0;      // tmpfs: bytes, 0 for the kernel's default
  Location where;

  // What the step's cache key holds of the mount: its options, never a secret's or a
  // cache's contents (as in BuildKit, a cache mount's files do not decide whether a RUN reruns).
  nlohmann::json key() const;
};

// Parses the value of one --mount flag (comma-separated key=value fields; values are expanded
// with the stage's variables). `workdir` makes relative targets absolute.
RunMount parse_run_mount(const Flag& flag, const Vars& vars, const WordOptions& words, const std::string& workdir);

// The host folder of a cache mount: <build_cache_dir>/build/mount-cache/<sha256 of id>, made
// with the mount's mode and owner the first time.
std::filesystem::path cache_mount_dir(const std::filesystem::path& build_cache_dir, const RunMount& m);

// An exclusive lock on a cache mount for one RUN (sharing=locked and private), released when
// the object goes: two builds in parallel then take turns with the cache's files.
class CacheMountLock {
 public:
  explicit CacheMountLock(const std::filesystem::path& dir);
  ~CacheMountLock();
  CacheMountLock(const CacheMountLock&) = delete;
  CacheMountLock& operator=(const CacheMountLock&) = delete;

 private:
  int fd_ = -1;
};

// A stage or image named by from=: its layer folders (top first) and its cache chain.
struct MountSourceTree {
  std::vector<std::filesystem::path> lowers;
  std::string chain;
};

// What the mounts of one RUN draw on.
struct RunMountSources {
  std::filesystem::path context;
  const IgnoreRules* ignore = nullptr;
  std::filesystem::path build_cache_dir;
  const std::vector<SecretSource>* secrets = nullptr;
  std::function<MountSourceTree(const std::string& from, const Location& where)> tree_of;
};

// The step cache's view of the mounts: their options, the content of a bind's context files,
// the chain of a bind's stage; never a secret or a cache's files.
nlohmann::json run_mounts_key(const std::vector<RunMount>& mounts, const RunMountSources& src);

// Adds the mounts to a RUN's sandbox: binds (from the context or a stage, overlaid when rw),
// cache folders, tmpfs, secrets (files on a private tmpfs, or environment variables);
// `scratch` is the step's temporary folder. The returned locks are held while the command runs.
std::vector<std::unique_ptr<CacheMountLock>> add_run_mounts(const std::vector<RunMount>& mounts, const RunMountSources& src,
                                                            const std::filesystem::path& scratch, SandboxSpec& spec);

}  // namespace nemokit::dockerfile
