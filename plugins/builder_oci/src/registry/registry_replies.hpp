#pragma once
// What a registry answers, read without trusting it: the token server's JSON, a manifest list
// and an image manifest. Every malformed answer is a BuildError naming where it came from and
// the key at fault, never the JSON library's own words.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/oci/platform.hpp"

namespace nemokit::registry {

// The bearer token of a token server's answer ({"token": ...} or {"access_token": ...}).
// `where` names the server (its realm).
std::string token_of_reply(const std::string& body, const std::string& where);

// A registry manifest document, checked to be a JSON object; `where` names the reference.
struct ManifestReply {
  std::string text;      // the bytes, as received (their digest is the manifest's)
  nlohmann::json doc;    // a JSON object
  bool is_list = false;  // an OCI index or a Docker manifest list
  std::string media_type;
};
ManifestReply read_manifest_reply(const std::string& text, const std::string& where);

// The digest of the image of `platform` in a manifest list; none throws, naming the platforms
// the list has.
std::string platform_manifest_digest(const ManifestReply& list, const oci::Platform& platform, const std::string& where);

// The config's digest then each layer's, of an image manifest; each "sha256:<64 hex>".
std::vector<std::string> image_manifest_blobs(const ManifestReply& manifest, const std::string& where);

}  // namespace nemokit::registry
