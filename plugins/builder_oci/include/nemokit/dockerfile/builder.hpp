#pragma once
// `nemokit build`: a Dockerfile -> an OCI image layout under
// <build_cache_dir>/oci/<tag> and <build_cache_dir>/containers/<tag>.sqsh.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "nemokit/oci/platform.hpp"

namespace nemokit::dockerfile {

// A secret given to the build (`--secret id=ID,src=FILE` or `id=ID,env=VAR`, as docker build
// takes them) for RUN --mount=type=secret. Only where to read it travels; the bytes are read
// when a RUN step uses it and never reach a layer, the image config or the step cache.
struct SecretSource {
  std::string id;
  std::filesystem::path file;  // set for a file
  std::string env;             // set for an environment variable
};

// Parses one --secret value; throws BuildError naming it.
SecretSource parse_secret_option(const std::string& value);

// The secret's bytes, or nullopt when its file or variable does not exist.
std::optional<std::string> read_secret(const SecretSource& s);

struct BuildRequest {
  std::string tag;  // image name: containers/<tag>.sqsh
  std::string dockerfile_text;
  std::string dockerfile_name;  // for messages
  std::filesystem::path context;
  std::filesystem::path build_cache_dir;
  bool no_cache = false;
  bool network = true;                  // RUN shares the host network unless false
  std::vector<std::string> build_args;  // K=V (or K: taken from the environment)
  std::optional<std::string> target;
  std::optional<std::string> output;  // oci-archive:FILE | docker-archive:FILE
  bool write_squashfs = true;
  std::vector<SecretSource> secrets;
  // The image's platform (--platform): bases are pulled for it and its config records it.
  // FROM --platform= sets a stage's own. Defaults to this machine's.
  oci::Platform platform = oci::host_platform();
};

// The JSON request the core sends (see core/src/cli/cmd_build.cpp). Stage
// images come without a context: $NEMOKIT_BUILD_CONTEXT, else `default_context`.
BuildRequest parse_build_request(const std::string& json_text, const std::filesystem::path& default_context);

struct BuildOutcome {
  std::filesystem::path layout;    // OCI image layout folder
  std::filesystem::path squashfs;  // empty when not written
  std::string manifest_digest;
  int steps_run = 0;             // RUN/COPY/ADD steps executed
  int steps_cached = 0;          // ... taken from the layer cache
  bool squashfs_reused = false;  // the .sqsh was already up to date
};

BuildOutcome run_build(const BuildRequest& request);

}  // namespace nemokit::dockerfile
