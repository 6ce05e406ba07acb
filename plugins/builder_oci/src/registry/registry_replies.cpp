#include "registry_replies.hpp"

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {
using dockerfile::BuildError;
using nlohmann::json;

namespace {

// The string at `key` of `object`, or "" when absent; any other type is named.
std::string string_at(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (!it->is_string()) throw BuildError(where + ": \"" + key + "\" is " + it->type_name() + ", not a string");
  return it->get<std::string>();
}

std::string checked_digest(const json& descriptor, const std::string& where) {
  if (!descriptor.is_object()) throw BuildError(where + " is " + descriptor.type_name() + ", not a descriptor object");
  std::string digest = string_at(descriptor, "digest", where);
  if (!rt::is_sha256_digest(digest)) throw BuildError(where + ": unsupported digest '" + digest.substr(0, 100) + "'");
  return digest;
}

json parse_object(const std::string& text, const std::string& where, const char* what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw BuildError(where + ": " + what + " is not a JSON object");
  return j;
}

bool is_index(const std::string& mt) {
  return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json";
}

}  // namespace

std::string token_of_reply(const std::string& body, const std::string& where) {
  json j = parse_object(body, where, "the token answer");
  std::string token = string_at(j, "token", where + ": token answer");
  if (token.empty()) token = string_at(j, "access_token", where + ": token answer");
  if (token.empty()) throw BuildError(where + ": no token in the answer");
  // The token goes into an HTTP header: a line break would start another header.
  if (token.find_first_of("\r\n") != std::string::npos) throw BuildError(where + ": the token holds a line break");
  return token;
}

ManifestReply read_manifest_reply(const std::string& text, const std::string& where) {
  json m = parse_object(text, where, "manifest");
  ManifestReply r{text, m, false, string_at(m, "mediaType", where + ": manifest")};
  r.is_list = is_index(r.media_type) || m.contains("manifests");
  return r;
}

std::string platform_manifest_digest(const ManifestReply& list, const oci::Platform& platform, const std::string& where) {
  const json& m = list.doc;
  if (!m.contains("manifests") || !m["manifests"].is_array())
    throw BuildError(where + ": \"manifests\" of the manifest list is not an array");
  const json& manifests = m["manifests"];
  std::string has;
  for (size_t i = 0; i < manifests.size(); ++i) {
    const json& d = manifests[i];
    const std::string at = where + ": manifests[" + std::to_string(i) + "]";
    if (!d.is_object()) throw BuildError(at + " is " + d.type_name() + ", not a descriptor object");
    auto pl = d.find("platform");
    if (pl == d.end() || !pl->is_object()) continue;
    std::string os = string_at(*pl, "os", at + ".platform"), arch = string_at(*pl, "architecture", at + ".platform");
    std::string variant = string_at(*pl, "variant", at + ".platform");
    if (oci::platform_matches(*pl, platform)) return checked_digest(d, at);
    has += (has.empty() ? "" : ", ") + os + "/" + arch + (variant.empty() ? "" : "/" + variant);
  }
  throw BuildError(where + ": no " + platform.str() + " image in the manifest list" +
                   (has.empty() ? "" : " (it has " + has.substr(0, 300) + ")"));
}

std::vector<std::string> image_manifest_blobs(const ManifestReply& manifest, const std::string& where) {
  const json& m = manifest.doc;
  if (!m.contains("config") || !m.contains("layers")) throw BuildError(where + ": not an image manifest");
  std::vector<std::string> digests{checked_digest(m["config"], where + ": config")};
  const json& layers = m["layers"];
  if (!layers.is_array()) throw BuildError(where + ": \"layers\" of the manifest is not an array");
  for (size_t i = 0; i < layers.size(); ++i)
    digests.push_back(checked_digest(layers[i], where + ": layers[" + std::to_string(i) + "]"));
  return digests;
}

}  // namespace nemokit::registry
