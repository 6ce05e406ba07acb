#include "nemokit/dockerfile/oci_output.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void link_or_copy(const fs::path& from, const fs::path& to) {
  if (fs::exists(to)) return;
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to);
}

std::string hex(const std::string& digest) { return digest.substr(7); }

class TarWriter {
 public:
  explicit TarWriter(const fs::path& file) : out_(file) {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    if (archive_write_open_filename(a_, out_.temp_path().c_str()) != ARCHIVE_OK) fail(file.string());
  }
  ~TarWriter() {
    if (a_) archive_write_free(a_);
  }
  void dir(const std::string& name) {
    archive_entry* e = entry(name + "/", AE_IFDIR, 0755, 0);
    check(archive_write_header(a_, e), name);
    archive_entry_free(e);
  }
  void bytes(const std::string& name, const std::string& data) {
    archive_entry* e = entry(name, AE_IFREG, 0644, data.size());
    check(archive_write_header(a_, e), name);
    if (!data.empty() && archive_write_data(a_, data.data(), data.size()) < 0) fail(name);
    archive_entry_free(e);
  }
  void file(const std::string& name, const fs::path& path) {
    archive_entry* e = entry(name, AE_IFREG, 0644, fs::file_size(path));
    check(archive_write_header(a_, e), name);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), std::streamsize(buf.size()));
      if (in.gcount() > 0 && archive_write_data(a_, buf.data(), size_t(in.gcount())) < 0) fail(name);
    }
    archive_entry_free(e);
  }
  void commit() {
    if (archive_write_close(a_) != ARCHIVE_OK) fail("closing");
    archive_write_free(a_);
    a_ = nullptr;
    out_.commit();
  }

 private:
  archive_entry* entry(const std::string& name, unsigned type, unsigned mode, uint64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_size(e, int64_t(size));
    archive_entry_set_mtime(e, 0, 0);
    return e;
  }
  void check(int rc, const std::string& what) {
    if (rc < ARCHIVE_WARN) fail(what);
  }
  [[noreturn]] void fail(const std::string& what) {
    throw BuildError("writing " + out_.temp_path().string() + ": " + what + ": " +
                     (archive_error_string(a_) ? archive_error_string(a_) : "error"));
  }
  rt::AtomicOutput out_;
  archive* a_ = nullptr;
};

void add_layout(TarWriter& tar, const fs::path& layout_dir) {
  tar.file("oci-layout", layout_dir / "oci-layout");
  tar.file("index.json", layout_dir / "index.json");
  tar.dir("blobs");
  tar.dir("blobs/sha256");
  std::set<std::string> names;
  for (auto& d : fs::directory_iterator(layout_dir / "blobs" / "sha256")) names.insert(d.path().filename().string());
  for (auto& n : names) tar.file("blobs/sha256/" + n, layout_dir / "blobs" / "sha256" / n);
}

}  // namespace

LayoutResult write_oci_layout(const LayerStore& store, const BuiltImage& image, const fs::path& dir) {
  fs::create_directories(dir / "blobs" / "sha256");
  fs::path blobs = dir / "blobs" / "sha256";
  std::set<std::string> keep;
  json manifest = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"layers", json::array()}};
  for (auto& l : image.layers) {
    link_or_copy(store.blob_path(l.digest), blobs / hex(l.digest));
    keep.insert(hex(l.digest));
    manifest["layers"].push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
  }
  std::string config_text = image.config.dump();
  std::string config_digest = rt::Sha256::digest_of(config_text);
  if (!fs::exists(blobs / hex(config_digest))) rt::write_file_atomic(blobs / hex(config_digest), config_text);
  keep.insert(hex(config_digest));
  manifest["config"] = {
      {"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config_digest}, {"size", config_text.size()}};
  std::string manifest_text = manifest.dump();
  std::string manifest_digest = rt::Sha256::digest_of(manifest_text);
  if (!fs::exists(blobs / hex(manifest_digest))) rt::write_file_atomic(blobs / hex(manifest_digest), manifest_text);
  keep.insert(hex(manifest_digest));
  // The index entry names the platform the config records, so readers pick it by platform.
  json platform = {{"architecture", image.config.value("architecture", "amd64")}, {"os", image.config.value("os", "linux")}};
  if (image.config.contains("variant")) platform["variant"] = image.config["variant"];
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", manifest_digest},
                   {"size", manifest_text.size()},
                   {"platform", platform},
                   {"annotations", {{"org.opencontainers.image.ref.name", image.tag}}}}}}};
  if (!fs::exists(dir / "oci-layout")) rt::write_file_atomic(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  rt::write_file_atomic(dir / "index.json", index.dump());
  for (auto& d : fs::directory_iterator(blobs))
    if (!keep.count(d.path().filename().string())) fs::remove(d.path());
  return {dir, manifest_digest, config_digest};
}

void write_oci_archive(const fs::path& layout_dir, const fs::path& file) {
  TarWriter tar(file);
  add_layout(tar, layout_dir);
  tar.commit();
}

void write_docker_archive(const LayoutResult& layout, const BuiltImage& image, const fs::path& file) {
  json m = json::object();
  m["Config"] = "blobs/sha256/" + hex(layout.config_digest);
  std::string tag = image.tag.find(':') == std::string::npos ? image.tag + ":latest" : image.tag;
  m["RepoTags"] = json::array({tag});
  m["Layers"] = json::array();
  for (auto& l : image.layers) m["Layers"].push_back("blobs/sha256/" + hex(l.digest));
  TarWriter tar(file);
  add_layout(tar, layout.dir);
  tar.bytes("manifest.json", json::array({m}).dump());
  tar.commit();
}

}  // namespace nemokit::dockerfile
