#pragma once
// `nemokit build`: a Dockerfile -> an OCI image layout under
// <build_cache_dir>/oci/<tag> and <build_cache_dir>/containers/<tag>.sqsh.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nemokit::dockerfile {

struct BuildRequest {
    std::string tag;                      // image name: containers/<tag>.sqsh
    std::string dockerfile_text;
    std::string dockerfile_name;          // for messages
    std::filesystem::path context;
    std::filesystem::path build_cache_dir;
    bool no_cache = false;
    bool network = true;                  // RUN shares the host network unless false
    std::vector<std::string> build_args;  // K=V (or K: taken from the environment)
    std::optional<std::string> target;
    std::optional<std::string> output;    // oci-archive:FILE | docker-archive:FILE
    bool write_squashfs = true;
};

// The JSON request the core sends (see core/src/cli/cmd_build.cpp). Stage
// images come without a context: $NEMOKIT_BUILD_CONTEXT, else `default_context`.
BuildRequest parse_build_request(const std::string& json_text, const std::filesystem::path& default_context);

struct BuildOutcome {
    std::filesystem::path layout;    // OCI image layout folder
    std::filesystem::path squashfs;  // empty when not written
    std::string manifest_digest;
    int steps_run = 0;               // RUN/COPY/ADD steps executed
    int steps_cached = 0;            // ... taken from the layer cache
    bool squashfs_reused = false;    // the .sqsh was already up to date
};

BuildOutcome run_build(const BuildRequest& request);

}  // namespace nemokit::dockerfile
