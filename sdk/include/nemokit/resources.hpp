// Parsing of the embedded resource records (see nemokit/plugin.h): shared by the host, which
// reads them from the plugin file without loading it, and by plugins, which read their own.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nemokit::sdk {

struct Resource {
  std::string_view name;
  std::string_view bytes;
};

// Splits a resources blob into records; throws std::runtime_error on a truncated or malformed
// blob (a record running past the end, a name without its NUL).
inline std::vector<Resource> parse_resources(std::string_view blob) {
  std::vector<Resource> out;
  size_t pos = 0;
  while (pos < blob.size()) {
    // The assembler may pad between sections with zero bytes: skip them.
    if (blob[pos] == '\0') { ++pos; continue; }
    size_t nul = blob.find('\0', pos);
    if (nul == std::string_view::npos)
      throw std::runtime_error("resource section: name at byte " + std::to_string(pos) + " has no terminator");
    std::string_view name = blob.substr(pos, nul - pos);
    pos = nul + 1;
    if (blob.size() - pos < 8)
      throw std::runtime_error("resource section: size of '" + std::string(name) + "' is truncated");
    uint64_t size = 0;
    for (int i = 7; i >= 0; --i) size = (size << 8) | static_cast<unsigned char>(blob[pos + i]);
    pos += 8;
    if (size > blob.size() - pos)
      throw std::runtime_error("resource section: '" + std::string(name) + "' claims " + std::to_string(size) +
                               " bytes, only " + std::to_string(blob.size() - pos) + " remain");
    out.push_back({name, blob.substr(pos, size)});
    pos += size;
  }
  return out;
}

inline std::optional<std::string_view> find_resource(std::string_view blob, std::string_view name) {
  for (const Resource& r : parse_resources(blob))
    if (r.name == name) return r.bytes;
  return std::nullopt;
}

}  // namespace nemokit::sdk
