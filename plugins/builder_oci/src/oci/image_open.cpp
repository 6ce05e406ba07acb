#include <sys/stat.h>

#include <algorithm>

#include "nemokit/oci/error.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/runtime/json_file.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::oci {
namespace {

using nlohmann::json;

const char* kRefName = "org.opencontainers.image.ref.name";

bool is_index_type(const std::string& mt) {
  return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json";
}

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(what + ": invalid JSON: " + e.what());
  }
}

// "sha256:<64 hex>" -> "blobs/sha256/<hex>"; anything else is refused so a
// digest can never name a path outside blobs/.
std::string blob_path(const std::string& digest, const std::string& what) {
  if (!rt::is_sha256_digest(digest)) throw Error(what + ": unsupported or malformed digest '" + digest + "'");
  return "blobs/sha256/" + digest.substr(7);
}

// Reads a JSON blob named by a descriptor and checks its size and digest.
json read_verified_json(const BlobStore& store, const json& desc, const std::string& what) {
  if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string())
    throw Error(what + ": descriptor without a digest");
  std::string digest = desc["digest"];
  std::string path = blob_path(digest, what);
  std::string text = store.read_text(path);
  if (desc.contains("size") && desc["size"].is_number_unsigned() && desc["size"].get<uint64_t>() != text.size())
    throw Error(store.describe() + ":" + path + ": size " + std::to_string(text.size()) + " does not match descriptor size " +
                std::to_string(desc["size"].get<uint64_t>()));
  if (rt::Sha256::digest_of(text) != digest)
    throw Error(store.describe() + ":" + path + ": content does not match digest " + digest);
  return parse_json(text, store.describe() + ":" + path);
}

std::vector<std::string> diff_ids_of(const json& config, const std::string& what) {
  std::vector<std::string> ids;
  try {
    for (auto& id : config.at("rootfs").at("diff_ids")) ids.push_back(id.get<std::string>());
  } catch (const json::exception&) {
    throw Error(what + ": config has no rootfs.diff_ids list");
  }
  return ids;
}

// The runtime settings ("config" of the image config) that readers take as typed values: a
// value of another type is refused here, by key, rather than as a JSON library error wherever
// it is first read (an enroot rc file, a build FROM this image).
void check_runtime_config(const json& config, const std::string& what) {
  if (!config.contains("config") || config["config"].is_null()) return;
  const json& c = config["config"];
  if (!c.is_object()) throw Error(what + ": config is not an object");
  auto wrong = [&](const char* key, const char* want) { throw Error(what + ": config." + key + " is not " + want); };
  for (const char* key : {"User", "WorkingDir", "StopSignal"})
    if (c.contains(key) && !c[key].is_null() && !c[key].is_string()) wrong(key, "a string");
  for (const char* key : {"Env", "Entrypoint", "Cmd", "Shell"}) {
    if (!c.contains(key) || c[key].is_null()) continue;
    if (!c[key].is_array()) wrong(key, "a list of strings");
    for (auto& v : c[key])
      if (!v.is_string()) wrong(key, "a list of strings");
  }
  for (const char* key : {"Volumes", "ExposedPorts", "Labels"})
    if (c.contains(key) && !c[key].is_null() && !c[key].is_object()) wrong(key, "an object");
}

bool entry_matches(const json& desc, const Platform& want) {
  return desc.is_object() && desc.contains("platform") && platform_matches(desc["platform"], want);
}

// Index -> one image manifest descriptor: by tag, else the only one, else the one of `want`.
json pick_manifest(const BlobStore& store, const json& index, const std::string& tag, const Platform& want,
                   const std::string& what, int depth = 0) {
  if (depth > 4) throw Error(what + ": nested indexes too deep");
  if (!index.contains("manifests") || !index["manifests"].is_array()) throw Error(what + ": index has no manifests list");
  const json& ms = index["manifests"];
  std::vector<json> candidates;
  if (!tag.empty()) {
    for (auto& m : ms) {
      auto ann = m.value("annotations", json::object());
      std::string ref = ann.value(kRefName, "");
      std::string cname = ann.value("io.containerd.image.name", "");
      if (ref == tag || (!cname.empty() && cname.size() > tag.size() &&
                         cname.compare(cname.size() - tag.size() - 1, std::string::npos, ":" + tag) == 0))
        candidates.push_back(m);
    }
    if (candidates.empty()) {
      std::string known;
      for (auto& m : ms) {
        std::string ref = m.value("annotations", json::object()).value(kRefName, "");
        if (!ref.empty()) known += (known.empty() ? "" : ", ") + ref;
      }
      throw Error(what + ": no image tagged '" + tag + "'" + (known.empty() ? "" : " (tags: " + known + ")"));
    }
  } else {
    for (auto& m : ms) candidates.push_back(m);
  }
  if (candidates.size() > 1) {
    std::vector<json> matching;
    for (auto& m : candidates)
      if (entry_matches(m, want)) matching.push_back(m);
    if (matching.size() == 1)
      candidates = matching;
    else
      throw Error(what + ": holds " + std::to_string(candidates.size()) + " images" +
                  (matching.empty() ? ", none for " + want.str() : "") + "; name one with :TAG");
  }
  if (candidates.empty()) throw Error(what + ": index lists no images");
  json chosen = candidates.front();
  if (is_index_type(chosen.value("mediaType", ""))) {
    json nested = read_verified_json(store, chosen, what);
    std::vector<json> matching;
    for (auto& m : nested.value("manifests", json::array()))
      if (entry_matches(m, want)) matching.push_back(m);
    if (matching.empty()) {
      if (nested.value("manifests", json::array()).size() == 1) return pick_manifest(store, nested, "", want, what, depth + 1);
      throw Error(what + ": image index has no " + want.str() + " manifest");
    }
    json one = json::object({{"manifests", json::array({matching.front()})}});
    return pick_manifest(store, one, "", want, what, depth + 1);
  }
  return chosen;
}

Image open_oci(std::shared_ptr<BlobStore> store, const std::string& tag, const Platform& want, const std::string& format,
               const std::string& source) {
  const std::string what = store->describe();
  if (!store->exists("oci-layout")) throw Error(what + ": no oci-layout file (not an OCI image layout)");
  json layout = parse_json(store->read_text("oci-layout"), what + ":oci-layout");
  if (layout.value("imageLayoutVersion", "") != "1.0.0") throw Error(what + ":oci-layout: unsupported imageLayoutVersion");
  json index = parse_json(store->read_text("index.json"), what + ":index.json");
  json mdesc = pick_manifest(*store, index, tag, want, what + ":index.json");
  json manifest = read_verified_json(*store, mdesc, what + ": manifest");

  Image img;
  img.source = source;
  img.format = format;
  img.store = store;
  img.manifest_digest = mdesc.value("digest", "");
  img.manifest_text = store->read_text(blob_path(img.manifest_digest, what));  // verified just above
  img.manifest_media_type = manifest.value("mediaType", mdesc.value("mediaType", "application/vnd.oci.image.manifest.v1+json"));
  if (auto ann = mdesc.value("annotations", json::object()); ann.contains(kRefName))
    img.tags.push_back(ann[kRefName].get<std::string>());
  if (!manifest.contains("config") || !manifest.contains("layers") || !manifest["layers"].is_array())
    throw Error(what + ": manifest " + mdesc.value("digest", "") + " lacks config or layers");
  img.config = read_verified_json(*store, manifest["config"], what + ": config");  // checks the digest is a string
  img.config_digest = manifest["config"]["digest"].get<std::string>();
  check_runtime_config(img.config, what + ": image config");
  auto diff_ids = diff_ids_of(img.config, what + ":" + blob_path(img.config_digest, what));
  if (diff_ids.size() != manifest["layers"].size())
    throw Error(what + ": manifest lists " + std::to_string(manifest["layers"].size()) + " layers but the config has " +
                std::to_string(diff_ids.size()) + " diff_ids");
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    const json& d = manifest["layers"][i];
    Layer layer;
    layer.digest = d.value("digest", "");
    layer.media_type = d.value("mediaType", "");
    if (d.contains("size") && d["size"].is_number_unsigned()) layer.size = d["size"].get<uint64_t>();
    std::string path = blob_path(*layer.digest, what + ": layer " + std::to_string(i));
    auto range = store->find(path);
    if (!range) throw Error(what + ": missing layer blob " + path);
    layer.blob = *range;
    layer.diff_id = diff_ids[i];
    img.layers.push_back(std::move(layer));
  }
  return img;
}

Image open_docker(std::shared_ptr<BlobStore> store, const std::string& tag, const std::string& source) {
  const std::string what = store->describe();
  json manifest = parse_json(store->read_text("manifest.json"), what + ":manifest.json");
  if (!manifest.is_array() || manifest.empty()) throw Error(what + ":manifest.json: expected a non-empty list");
  const json* entry = nullptr;
  if (!tag.empty()) {
    for (auto& m : manifest)
      for (auto& t : m.value("RepoTags", json::array()))
        if (t.is_string()) {
          std::string s = t;
          if (s == tag || (s.size() > tag.size() && s.compare(s.size() - tag.size() - 1, std::string::npos, ":" + tag) == 0))
            entry = &m;
        }
    if (!entry) throw Error(what + ":manifest.json: no image tagged '" + tag + "'");
  } else {
    if (manifest.size() != 1)
      throw Error(what + ":manifest.json: holds " + std::to_string(manifest.size()) + " images; name one with :TAG");
    entry = &manifest[0];
  }
  if (!entry->contains("Config") || !entry->contains("Layers"))
    throw Error(what + ":manifest.json: entry lacks Config or Layers");

  Image img;
  img.source = source;
  img.format = "docker-archive";
  img.store = store;
  for (auto& t : entry->value("RepoTags", json::array()))
    if (t.is_string()) img.tags.push_back(t);
  std::string config_path = (*entry)["Config"];
  std::string config_text = store->read_text(config_path);
  img.config_digest = rt::Sha256::digest_of(config_text);
  // The config is named by its digest, both in the old layout (<hex>.json)
  // and the new one (blobs/sha256/<hex>).
  std::string base = config_path.substr(config_path.rfind('/') + 1);
  if (base.size() >= 64) {
    std::string named = "sha256:" + base.substr(0, 64);
    if (rt::is_sha256_digest(named) && named != img.config_digest)
      throw Error(what + ":" + config_path + ": content does not match its digest name");
  }
  img.config = parse_json(config_text, what + ":" + config_path);
  check_runtime_config(img.config, what + ":" + config_path);
  auto diff_ids = diff_ids_of(img.config, what + ":" + config_path);
  const json& layers = (*entry)["Layers"];
  if (diff_ids.size() != layers.size())
    throw Error(what + ":manifest.json lists " + std::to_string(layers.size()) + " layers but the config has " +
                std::to_string(diff_ids.size()) + " diff_ids");
  json sources = entry->value("LayerSources", json::object());
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string path = layers[i];
    auto range = store->find(path);
    if (!range) throw Error(what + ": missing layer " + path);
    Layer layer;
    layer.blob = *range;
    layer.diff_id = diff_ids[i];
    if (path.starts_with("blobs/sha256/") && rt::is_sha256_digest("sha256:" + path.substr(13)))
      layer.digest = "sha256:" + path.substr(13);
    if (sources.contains(diff_ids[i])) {
      auto& s = sources[diff_ids[i]];
      layer.media_type = s.value("mediaType", "");
      if (s.contains("size") && s["size"].is_number_unsigned()) layer.size = s["size"].get<uint64_t>();
    }
    img.layers.push_back(std::move(layer));
  }
  return img;
}

// Splits "PATH[:TAG]": the tag is only split off when PATH alone exists or the
// whole does not.
std::pair<std::string, std::string> split_tag(const std::string& rest) {
  struct stat st;
  if (::stat(rest.c_str(), &st) == 0) return {rest, ""};
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || rest.find('/', colon) != std::string::npos) return {rest, ""};
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

std::shared_ptr<BlobStore> open_store(const std::string& path, bool want_dir) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": no such file or directory");
  if (S_ISDIR(st.st_mode)) {
    if (!want_dir) throw Error(path + ": is a directory, expected an archive file");
    return open_directory_store(path);
  }
  if (want_dir) throw Error(path + ": is not a directory");
  return open_tar_store(path);
}

}  // namespace

namespace {

Image open_image_json(const std::string& spec, const std::optional<Platform>& platform);

// An image description's JSON with a member of the wrong type (a digest that is a number, say):
// the JSON library's type error, named with the image it was read from.
template <class Open>
Image naming_the_image(const std::string& spec, Open&& open) {
  try {
    return open();
  } catch (const json::exception& e) {
    throw Error(spec + ": malformed image description: " + rt::json_error_text(e));
  }
}

}  // namespace

Image open_image(const std::string& spec, const std::optional<Platform>& platform) {
  return naming_the_image(spec, [&] { return open_image_json(spec, platform); });
}

namespace {

Image open_image_json(const std::string& spec, const std::optional<Platform>& platform) {
  const Platform want = platform ? *platform : host_platform();
  auto starts = [&](const char* p) { return spec.rfind(p, 0) == 0; };
  if (starts("oci:")) {
    auto [path, tag] = split_tag(spec.substr(4));
    return open_oci(open_store(path, true), tag, want, "oci", spec);
  }
  if (starts("oci-archive:")) {
    auto [path, tag] = split_tag(spec.substr(12));
    return open_oci(open_store(path, false), tag, want, "oci-archive", spec);
  }
  if (starts("docker-archive:")) {
    auto [path, tag] = split_tag(spec.substr(15));
    return open_docker(open_store(path, false), tag, spec);
  }
  auto [path, tag] = split_tag(spec);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": no such file or directory");
  std::shared_ptr<BlobStore> store = S_ISDIR(st.st_mode) ? open_directory_store(path) : open_tar_store(path);
  const char* kind = S_ISDIR(st.st_mode) ? "oci" : "oci-archive";
  if (store->exists("oci-layout") && store->exists("index.json")) return open_oci(store, tag, want, kind, spec);
  if (store->exists("manifest.json")) return open_docker(store, tag, spec);
  throw Error(path + ": neither an OCI image layout nor a docker save archive");
}

}  // namespace

}  // namespace nemokit::oci
