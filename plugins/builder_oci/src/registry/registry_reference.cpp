#include <cctype>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/registry/registry.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {
using dockerfile::BuildError;  // a failed pull is reported as a failed FROM

std::string ImageReference::str() const {
  return registry + "/" + repository + (reference.rfind("sha256:", 0) == 0 ? "@" : ":") + reference;
}

ImageReference parse_reference(const std::string& text) {
  ImageReference r;
  std::string rest = text;
  if (auto at = rest.find('@'); at != std::string::npos) {
    r.reference = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!rt::is_sha256_digest(r.reference)) throw BuildError("image reference " + text + ": unsupported digest");
  }
  size_t slash = rest.find('/');
  std::string first = rest.substr(0, slash);
  if (slash != std::string::npos &&
      (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")) {
    r.registry = first;
    rest = rest.substr(slash + 1);
  } else {
    r.registry = "docker.io";
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    if (r.reference.empty()) r.reference = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (r.reference.empty()) r.reference = "latest";
  if (rest.empty()) throw BuildError("image reference " + text + ": no repository");
  for (char c : rest)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
          c == '-' || c == '/'))
      throw BuildError("image reference " + text + ": invalid repository name '" + rest + "'");
  if (r.registry == "docker.io") {
    r.registry = "registry-1.docker.io";
    if (rest.find('/') == std::string::npos) rest = "library/" + rest;
  }
  r.repository = rest;
  return r;
}

}  // namespace nemokit::registry
