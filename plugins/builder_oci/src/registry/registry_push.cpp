// Push = for each blob (layers, then the config) a HEAD to see whether the repository has it,
// an upload of those it lacks (POST for a session, then one PUT with the digest, or PATCH
// chunks and a closing PUT), then the manifest PUT under the tag. The manifest goes byte for
// byte as the image stores it, so the registry names it by the image's own digest.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry_client.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/oci/blob_store.hpp"
#include "nemokit/registry/registry.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {
using dockerfile::BuildError;
using nlohmann::json;

namespace {

struct PushBlob {
  std::string digest;
  oci::BlobRange range;
  std::string what;  // "layer 2/5", "config"
};

std::string short_digest(const std::string& d) { return d.substr(0, 19); }

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / (1 << 20));
  return buf;
}

// Hashes a byte range (a docker save layer has no digest of its own).
std::string digest_of_range(const oci::BlobRange& r) {
  int fd = open(r.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw BuildError(r.name + ": " + std::strerror(errno));
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { close(*f); });
  rt::Sha256 h;
  std::vector<char> buf(1 << 20);
  for (uint64_t done = 0; done < r.size;) {
    size_t n = size_t(std::min<uint64_t>(buf.size(), r.size - done));
    oci::read_exact_at(fd, r.offset + done, buf.data(), n, r.name);
    h.update(buf.data(), n);
    done += n;
  }
  return h.finish_digest();
}

// The media type of an uncompressed, gzip or zstd layer, from its first bytes.
std::string layer_type_of(const oci::BlobRange& r) {
  unsigned char magic[4] = {};
  int fd = open(r.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0 && r.size >= 4) {
    ssize_t n = pread(fd, magic, 4, off_t(r.offset));
    (void)n;
  }
  if (fd >= 0) close(fd);
  if (magic[0] == 0x1f && magic[1] == 0x8b) return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
    return "application/vnd.oci.image.layer.v1.tar+zstd";
  return "application/vnd.oci.image.layer.v1.tar";
}

oci::BlobRange find_blob(const oci::Image& image, const std::string& digest, const std::string& what) {
  // OCI layouts keep blobs/sha256/<hex>; old docker save archives name the config <hex>.json.
  for (std::string path : {"blobs/sha256/" + digest.substr(7), digest.substr(7) + ".json"})
    if (auto r = image.store->find(path)) return *r;
  throw BuildError(image.source + ": the " + what + " blob " + digest + " is missing");
}

// The blobs to push, and the manifest: the stored one, or for a docker save archive (which has
// none) an OCI manifest made from its files.
std::vector<PushBlob> collect(const oci::Image& image, std::string& manifest, std::string& media_type) {
  std::vector<PushBlob> blobs;
  json made = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"layers", json::array()}};
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const oci::Layer& l = image.layers[i];
    std::string what = "layer " + std::to_string(i + 1) + "/" + std::to_string(image.layers.size());
    std::string digest = l.digest && !l.digest->empty() ? *l.digest : digest_of_range(l.blob);
    blobs.push_back({digest, l.blob, what});
    made["layers"].push_back(
        {{"mediaType", l.media_type.empty() ? layer_type_of(l.blob) : l.media_type}, {"digest", digest}, {"size", l.blob.size}});
  }
  oci::BlobRange config = find_blob(image, image.config_digest, "config");
  blobs.push_back({image.config_digest, config, "config"});
  if (!image.manifest_text.empty()) {
    manifest = image.manifest_text;
    media_type = image.manifest_media_type;
  } else {
    made["config"] = {
        {"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", image.config_digest}, {"size", config.size}};
    manifest = made.dump();
    media_type = "application/vnd.oci.image.manifest.v1+json";
  }
  return blobs;
}

std::string with_digest(const std::string& location, const std::string& digest) {
  return location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=sha256%3A" + digest.substr(7);
}

class Pusher {
 public:
  Pusher(const ImageReference& dest, const PushOptions& opt)
      : client_(dest, opt.credentials_file, opt.insecure_http, "pull,push"), chunk_(opt.chunk_size) {}

  // true when the repository has the blob already.
  bool exists(const PushBlob& b) {
    Response r = client_.send(Request{"HEAD", "/blobs/" + b.digest});
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    throw BuildError(
        client_.failure("checking " + b.what + " " + short_digest(b.digest) + " at " + client_.url("/blobs/" + b.digest), r));
  }

  void upload(const PushBlob& b) {
    Response r = client_.send(Request{"POST", "/blobs/uploads/"});
    if (r.status != 202)
      throw BuildError(client_.failure("starting the upload of " + b.what + " at " + client_.url("/blobs/uploads/"), r));
    std::string location = next_location(r, b);
    if (chunk_ > 0 && b.range.size > chunk_) {
      // PATCH the chunks in order, each at the Location the last one answered.
      for (uint64_t at = 0; at < b.range.size; at += chunk_) {
        uint64_t n = std::min<uint64_t>(chunk_, b.range.size - at);
        Request patch{"PATCH", location};
        patch.body = Body{nullptr, b.range.file, b.range.offset + at, n, "application/octet-stream"};
        patch.headers["Content-Range"] = std::to_string(at) + "-" + std::to_string(at + n - 1);
        Response pr = client_.send(patch);
        if (pr.status != 202)
          throw BuildError(
              client_.failure("uploading " + b.what + " (bytes " + std::to_string(at) + "-) to " + client_.url(location), pr));
        location = next_location(pr, b);
      }
      Request close{"PUT", with_digest(location, b.digest)};
      close.body = Body{nullptr, {}, 0, 0, "application/octet-stream"};
      Response cr = client_.send(close);
      if (cr.status != 201)
        throw BuildError(client_.failure("finishing the upload of " + b.what + " at " + client_.url(location), cr));
      return;
    }
    Request put{"PUT", with_digest(location, b.digest)};
    put.body = Body{nullptr, b.range.file, b.range.offset, b.range.size, "application/octet-stream"};
    Response pr = client_.send(put);
    if (pr.status != 201) throw BuildError(client_.failure("uploading " + b.what + " to " + client_.url(location), pr));
  }

  void manifest(const std::string& text, const std::string& media_type, const std::string& digest) {
    const std::string& ref = client_.ref().reference;
    Request put{"PUT", "/manifests/" + ref};
    put.body = Body{&text, {}, 0, 0, media_type};
    Response r = client_.send(put);
    if (r.status != 201) throw BuildError(client_.failure("putting the manifest at " + client_.url("/manifests/" + ref), r));
    auto said = r.headers.find("docker-content-digest");
    if (said != r.headers.end() && said->second != digest)
      throw BuildError(client_.url("/manifests/" + ref) + ": the registry stored the manifest as " + said->second +
                       ", not as its digest " + digest);
  }

 private:
  std::string next_location(const Response& r, const PushBlob& b) {
    auto it = r.headers.find("location");
    if (it == r.headers.end() || it->second.empty())
      throw BuildError(client_.ref().registry + ": the upload of " + b.what + " got no Location to continue at");
    return client_.url(it->second);
  }

  Client client_;
  uint64_t chunk_;
};

}  // namespace

PushResult push_image(const oci::Image& image, const ImageReference& dest, const PushOptions& options) {
  std::string manifest, media_type;
  std::vector<PushBlob> blobs = collect(image, manifest, media_type);
  PushResult result;
  result.manifest_digest = rt::Sha256::digest_of(manifest);
  if (dest.reference.rfind("sha256:", 0) == 0 && dest.reference != result.manifest_digest)
    throw BuildError(dest.str() + ": the image's manifest is " + result.manifest_digest + "; push it by tag or by that digest");
  std::cerr << "pushing " << image.source << " to " << dest.str() << "\n";
  Pusher pusher(dest, options);
  for (const PushBlob& b : blobs) {
    if (pusher.exists(b)) {
      ++result.blobs_present;
      std::cerr << "  " << b.what << " " << short_digest(b.digest) << ": already there\n";
      continue;
    }
    pusher.upload(b);
    ++result.blobs_uploaded;
    result.bytes_uploaded += b.range.size;
    std::cerr << "  " << b.what << " " << short_digest(b.digest) << ": uploaded " << mib(b.range.size) << "\n";
  }
  pusher.manifest(manifest, media_type, result.manifest_digest);
  return result;
}

}  // namespace nemokit::registry
