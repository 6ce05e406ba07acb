#include "nemokit/oci/platform.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "nemokit/oci/error.hpp"

namespace nemokit::oci {
namespace {

// The kernel's and distributions' names for architectures, as containerd normalizes them.
std::string normalize_arch(std::string arch, std::string& variant) {
  if (arch == "x86_64" || arch == "x86-64") arch = "amd64";
  if (arch == "i386" || arch == "i686") arch = "386";
  if (arch == "aarch64") arch = "arm64";
  if (arch == "armhf") arch = "arm", variant = variant.empty() ? "v7" : variant;
  if (arch == "armel") arch = "arm", variant = variant.empty() ? "v6" : variant;
  if (arch == "arm64" && (variant == "v8" || variant == "8")) variant.clear();
  if (arch == "arm" && variant.empty()) variant = "v7";
  if (arch == "arm" && (variant == "7" || variant == "6")) variant = "v" + variant;
  return arch;
}

struct Known {
  const char* arch;
  std::vector<std::string> variants;
};
const std::vector<Known>& known() {
  static const std::vector<Known> k = {{"amd64", {""}},   {"arm64", {""}}, {"arm", {"v6", "v7"}}, {"386", {""}},
                                       {"ppc64le", {""}}, {"s390x", {""}}, {"riscv64", {""}}};
  return k;
}

std::string known_list() {
  std::string out;
  for (auto& k : known())
    for (auto& v : k.variants) out += (out.empty() ? "" : ", ") + std::string("linux/") + k.arch + (v.empty() ? "" : "/" + v);
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string string_at(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string Platform::str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }

nlohmann::json Platform::to_json() const {
  nlohmann::json j = {{"architecture", architecture}, {"os", os}};
  if (!variant.empty()) j["variant"] = variant;
  return j;
}

Platform parse_platform(const std::string& text) {
  std::vector<std::string> parts;
  std::string rest = lower(text);
  for (size_t at = 0;;) {
    size_t slash = rest.find('/', at);
    parts.push_back(rest.substr(at, slash == std::string::npos ? std::string::npos : slash - at));
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
  Platform p;
  bool ok = true;
  if (parts.size() == 1) {  // a bare architecture: linux is meant
    p.architecture = parts[0];
  } else if (parts.size() == 2 || parts.size() == 3) {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  } else {
    ok = false;
  }
  p.architecture = normalize_arch(p.architecture, p.variant);
  auto k = std::find_if(known().begin(), known().end(), [&](const Known& x) { return p.architecture == x.arch; });
  ok = ok && p.os == "linux" && k != known().end() &&
       std::find(k->variants.begin(), k->variants.end(), p.variant) != k->variants.end();
  if (!ok) throw Error("unknown platform '" + text + "' (known: " + known_list() + ")");
  return p;
}

Platform host_platform() {
  Platform p;
  utsname u{};
  uname(&u);
  p.architecture = normalize_arch(u.machine, p.variant);
  return p;
}

bool platform_matches(const nlohmann::json& j, const Platform& want) {
  if (!j.is_object()) return false;
  std::string os = string_at(j, "os"), variant = string_at(j, "variant");
  std::string arch = normalize_arch(string_at(j, "architecture"), variant);
  return (os.empty() ? "linux" : os) == want.os && arch == want.architecture && variant == want.variant;
}

std::optional<Platform> platform_of_config(const nlohmann::json& config) {
  if (!config.is_object() || string_at(config, "architecture").empty()) return std::nullopt;
  Platform p;
  std::string os = string_at(config, "os");
  if (!os.empty()) p.os = os;
  p.variant = string_at(config, "variant");
  p.architecture = normalize_arch(string_at(config, "architecture"), p.variant);
  return p;
}

}  // namespace nemokit::oci
