#pragma once
// An image's platform (os/architecture[/variant]) as OCI spells it (Go's GOOS/GOARCH), parsed
// from what users write for `--platform` and `FROM --platform=`, matched against the platform
// of an index entry or an image config. Clusters mix machines: Grace Hopper nodes are
// linux/arm64, most others linux/amd64, so an image names which one it is for.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace nemokit::oci {

struct Platform {
  std::string os = "linux";
  std::string architecture;  // amd64, arm64, arm, 386, ppc64le, s390x, riscv64
  std::string variant;       // arm: v6 or v7; arm64's v8 is the default and left empty

  std::string str() const;  // "linux/arm64", "linux/arm/v7"
  // {"architecture": ..., "os": ...[, "variant": ...]}: the keys an image config and an index
  // entry's "platform" carry.
  nlohmann::json to_json() const;
  bool operator==(const Platform&) const = default;
};

// "linux/arm64", "linux/amd64", "linux/arm/v7", a bare "arm64", and the kernel's names
// ("aarch64", "x86_64"). Anything else throws oci::Error naming the text and the platforms known.
Platform parse_platform(const std::string& text);

// The machine this runs on (uname), e.g. linux/amd64.
Platform host_platform();

// Whether `p` (an index entry's "platform" object or an image config, both with "os",
// "architecture" and maybe "variant") describes `want`. A missing os counts as linux.
bool platform_matches(const nlohmann::json& p, const Platform& want);

// The platform an image config records; nullopt when it records no architecture.
std::optional<Platform> platform_of_config(const nlohmann::json& config);

}  // namespace nemokit::oci
