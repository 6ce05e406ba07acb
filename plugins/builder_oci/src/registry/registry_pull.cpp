// Pull = manifest (an index picks the requested platform's image), config and layer blobs,
// each checked against its digest, kept by digest in <cache>/registry/blobs, then an OCI image
// layout of hard links, one per platform, that the image reader opens like any other.
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "registry_client.hpp"
#include "registry_replies.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/registry/registry.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {
namespace fs = std::filesystem;
using dockerfile::BuildError;  // a failed pull is reported as a failed FROM
using nlohmann::json;

namespace {

const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

void check_digest(const std::string& digest, const std::string& what) {
  if (!rt::is_sha256_digest(digest)) throw BuildError(what + ": unsupported digest '" + digest + "'");
}

class Puller {
 public:
  Puller(const ImageReference& ref, const fs::path& cache, const PullOptions& opt, const oci::Platform& platform)
      : ref_(ref),
        client_(ref, opt.credentials_file, opt.insecure_http, "pull"),
        blobs_(cache / "registry" / "blobs" / "sha256"),
        platform_(platform) {
    fs::create_directories(blobs_);
  }

  // A manifest or index by tag or digest; verified when asked by digest.
  std::pair<std::string, std::string> manifest(const std::string& reference) {
    std::string text;
    Response r = client_.send(Request{"GET", "/manifests/" + reference, kManifestAccept}, Sink{&text}, [&] { text.clear(); });
    if (r.status != 200) throw BuildError(client_.failure(client_.where("/manifests/" + reference), r));
    std::string digest = rt::Sha256::digest_of(text);
    if (reference.rfind("sha256:", 0) == 0 && digest != reference)
      throw BuildError(client_.where("/manifests/" + reference) + ": content does not match its digest");
    return {text, digest};
  }

  fs::path store_bytes(const std::string& text) {
    std::string digest = rt::Sha256::digest_of(text);
    fs::path p = blobs_ / digest.substr(7);
    if (!fs::exists(p)) {
      rt::AtomicOutput out(p);
      std::ofstream(out.temp_path(), std::ios::binary) << text;
      out.commit();
    }
    return p;
  }

  fs::path blob(const std::string& digest) {
    check_digest(digest, ref_.str());
    fs::path p = blobs_ / digest.substr(7);
    if (fs::exists(p)) return p;
    rt::AtomicOutput out(p);
    int fd = -1;
    rt::Sha256 hash;
    auto open_fresh = [&] {
      if (fd >= 0) close(fd);
      fd = open(out.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) throw BuildError(out.temp_path().string() + ": " + std::strerror(errno));
      hash = rt::Sha256();
    };
    open_fresh();
    Sink sink{nullptr, fd, &hash};
    Response r;
    try {
      r = client_.send(Request{"GET", "/blobs/" + digest}, sink, [&] {
        open_fresh();
        sink.fd = fd;
      });
    } catch (...) {
      close(fd);
      throw;
    }
    fsync(fd);
    close(fd);
    if (r.status != 200) throw BuildError(client_.failure(client_.where("/blobs/" + digest), r));
    if (hash.finish_digest() != digest)
      throw BuildError(client_.where("/blobs/" + digest) + ": downloaded content does not match its digest");
    out.commit();
    return p;
  }

  fs::path pull(const fs::path& layout) {
    auto [text, digest] = manifest(ref_.reference);
    ManifestReply m = read_manifest_reply(text, ref_.str());
    const bool from_list = m.is_list;
    if (m.is_list) {
      std::tie(text, digest) = manifest(platform_manifest_digest(m, platform_, ref_.str()));
      m = read_manifest_reply(text, ref_.str());
    }
    std::vector<std::string> digests = image_manifest_blobs(m, ref_.str());
    store_bytes(text);
    std::string mt = m.media_type.empty() ? "application/vnd.oci.image.manifest.v1+json" : m.media_type;
    // The config first: an image of one platform only is checked before its layers come.
    check_platform(blob(digests[0]), from_list);
    for (auto& d : digests) blob(d);

    fs::create_directories(layout / "blobs" / "sha256");
    digests.push_back(digest);
    for (auto& d : digests) {
      fs::path link = layout / "blobs" / "sha256" / d.substr(7);
      if (fs::exists(link)) continue;
      std::error_code ec;
      fs::create_hard_link(blobs_ / d.substr(7), link, ec);
      if (ec) fs::copy_file(blobs_ / d.substr(7), link);
    }
    json index = {{"schemaVersion", 2},
                  {"manifests",
                   {{{"mediaType", mt},
                     {"digest", digest},
                     {"size", text.size()},
                     {"platform", platform_.to_json()},
                     {"annotations", {{"org.opencontainers.image.ref.name", "latest"}}}}}}};
    {
      rt::AtomicOutput out(layout / "oci-layout");
      std::ofstream(out.temp_path()) << R"({"imageLayoutVersion":"1.0.0"})";
      out.commit();
    }
    rt::AtomicOutput out(layout / "index.json");
    std::ofstream(out.temp_path()) << index.dump();
    out.commit();
    return layout;
  }

 private:
  // A manifest list chose by platform already; a lone image manifest says its platform only
  // in its config, and one of another platform than asked for would build a mislabeled image.
  void check_platform(const fs::path& config_file, bool from_list) {
    std::ifstream in(config_file);
    json config = json::parse(in, nullptr, false);
    std::optional<oci::Platform> has = oci::platform_of_config(config);
    if (!has || *has == platform_) return;
    throw BuildError(ref_.str() + " is a " + has->str() + " image, not " + platform_.str() +
                     (from_list ? " (its manifest list says otherwise)"
                                : " (the registry has no manifest list for it); choose another --platform or image"));
  }

  ImageReference ref_;
  Client client_;
  fs::path blobs_;
  oci::Platform platform_;
};

std::string safe_name(std::string s) {
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return s;
}

}  // namespace

fs::path pull_image(const ImageReference& ref, const fs::path& build_cache_dir, const PullOptions& options) {
  oci::Platform platform = options.platform ? *options.platform : oci::host_platform();
  // One layout per platform: the same tag pulled for arm64 and for amd64 are two images.
  fs::path layout = build_cache_dir / "registry" / "images" / safe_name(ref.registry) / safe_name(ref.repository) /
                    safe_name(ref.reference) / safe_name(platform.str());
  std::cerr << "pulling " << ref.str() << " (" << platform.str() << ")\n";
  return Puller(ref, build_cache_dir, options, platform).pull(layout);
}

}  // namespace nemokit::registry
