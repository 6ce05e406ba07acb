#include "oci_test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/sha256.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

namespace ocitest {

TarEntry file_entry(std::string path, std::string data, unsigned mode) {
  TarEntry e;
  e.kind = TarEntry::File;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
TarEntry dir_entry(std::string path, unsigned mode) {
  TarEntry e;
  e.kind = TarEntry::Dir;
  e.path = std::move(path);
  e.mode = mode;
  return e;
}
TarEntry symlink_entry(std::string path, std::string target) {
  TarEntry e;
  e.kind = TarEntry::Symlink;
  e.path = std::move(path);
  e.target = std::move(target);
  e.mode = 0777;
  return e;
}
TarEntry hardlink_entry(std::string path, std::string target) {
  TarEntry e;
  e.kind = TarEntry::Hardlink;
  e.path = std::move(path);
  e.target = std::move(target);
  return e;
}

namespace {

void check(int r, archive* a, const char* what) {
  if (r < ARCHIVE_WARN) throw std::runtime_error(std::string(what) + ": " + archive_error_string(a));
}

using nemokit::test::read_file;
using nemokit::test::write_file;

}  // namespace

std::string make_tar(const std::vector<TarEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_per_block(a, 0);
  size_t capacity = 1u << 20;
  for (auto& t : entries) capacity += t.data.size() + 4096;
  std::vector<char> buf(capacity);
  size_t used = 0;
  check(archive_write_open_memory(a, buf.data(), buf.size(), &used), a, "open");
  for (auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.mode);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    for (auto& [k, v] : t.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    switch (t.kind) {
      case TarEntry::File:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, la_int64_t(t.data.size()));
        break;
      case TarEntry::Dir:
        archive_entry_set_filetype(e, AE_IFDIR);
        break;
      case TarEntry::Symlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.target.c_str());
        break;
      case TarEntry::Hardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.target.c_str());
        archive_entry_set_size(e, 0);
        break;
      case TarEntry::Fifo:
        archive_entry_set_filetype(e, AE_IFIFO);
        break;
      case TarEntry::CharDev:
      case TarEntry::BlockDev:
        archive_entry_set_filetype(e, t.kind == TarEntry::CharDev ? AE_IFCHR : AE_IFBLK);
        archive_entry_set_rdevmajor(e, t.dev_major);
        archive_entry_set_rdevminor(e, t.dev_minor);
        break;
    }
    check(archive_write_header(a, e), a, "header");
    if (t.kind == TarEntry::File && !t.data.empty())
      if (archive_write_data(a, t.data.data(), t.data.size()) < 0) check(ARCHIVE_FATAL, a, "data");
    archive_entry_free(e);
  }
  check(archive_write_close(a), a, "close");
  archive_write_free(a);
  return std::string(buf.data(), used);
}

std::string tar_of_paths(const fs::path& root, const std::vector<std::string>& paths) {
  std::vector<std::string> argv = {"tar", "-C", root.string(), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", "-"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  nemokit::test::RunResult r = nemokit::test::run(argv);
  if (r.exit_code != 0) throw std::runtime_error("tar failed: " + r.err);
  return r.out;
}

std::string compress(const std::string& tar, const std::string& how) {
  if (how == "none") return tar;
  archive* a = archive_write_new();
  archive_write_set_format_raw(a);
  if (how == "gzip")
    archive_write_add_filter_gzip(a);
  else if (how == "zstd")
    archive_write_add_filter_zstd(a);
  else
    throw std::runtime_error("compression " + how);
  archive_write_set_bytes_per_block(a, 0);
  std::vector<char> buf(tar.size() + (1u << 20));
  size_t used = 0;
  check(archive_write_open_memory(a, buf.data(), buf.size(), &used), a, "open");
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_pathname(e, "layer");
  archive_entry_set_size(e, la_int64_t(tar.size()));
  check(archive_write_header(a, e), a, "header");
  if (archive_write_data(a, tar.data(), tar.size()) < 0) check(ARCHIVE_FATAL, a, "data");
  archive_entry_free(e);
  check(archive_write_close(a), a, "close");
  archive_write_free(a);
  return std::string(buf.data(), used);
}

std::string sha256(const std::string& data) { return nemokit::rt::Sha256::digest_of(data); }

nlohmann::json default_config(const std::vector<LayerBlob>& layers) {
  nlohmann::json diff_ids = nlohmann::json::array();
  for (auto& l : layers) diff_ids.push_back(sha256(l.tar));
  return {{"architecture", "amd64"},
          {"os", "linux"},
          {"config",
           {{"Env", {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}},
            {"Entrypoint", {"/bin/echo", "it's"}},
            {"Cmd", {"hello world"}},
            {"WorkingDir", "/work/dir"},
            {"Volumes", {{"/data", nlohmann::json::object()}}},
            {"Labels", {{"org.example.stage", "test"}}}}},
          {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
}

fs::path write_oci_layout(const fs::path& dir, const std::vector<LayerBlob>& layers, const nlohmann::json& config,
                          const std::string& tag) {
  fs::create_directories(dir / "blobs" / "sha256");
  auto put = [&](const std::string& data) {
    std::string d = sha256(data);
    write_file(dir / "blobs" / "sha256" / d.substr(7), data);
    return d;
  };
  nlohmann::json mlayers = nlohmann::json::array();
  for (auto& l : layers) {
    std::string blob = compress(l.tar, l.compression);
    std::string mt = "application/vnd.oci.image.layer.v1.tar";
    if (l.compression == "gzip") mt += "+gzip";
    if (l.compression == "zstd") mt += "+zstd";
    mlayers.push_back({{"mediaType", mt}, {"digest", put(blob)}, {"size", blob.size()}});
  }
  std::string cfg = config.dump();
  nlohmann::json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", put(cfg)}, {"size", cfg.size()}}},
      {"layers", mlayers}};
  std::string m = manifest.dump();
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests",
                           {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"digest", put(m)},
                             {"size", m.size()},
                             {"annotations", {{"org.opencontainers.image.ref.name", tag}}}}}}};
  write_file(dir / "index.json", index.dump());
  write_file(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  return dir;
}

fs::path write_docker_archive(const fs::path& out, const std::vector<LayerBlob>& layers, const nlohmann::json& config,
                              const std::string& repo_tag) {
  std::vector<TarEntry> entries;
  nlohmann::json names = nlohmann::json::array();
  for (auto& l : layers) {
    std::string id = sha256(l.tar).substr(7);
    entries.push_back(dir_entry(id));
    entries.push_back(file_entry(id + "/layer.tar", l.tar));
    names.push_back(id + "/layer.tar");
  }
  std::string cfg = config.dump();
  std::string cfg_name = sha256(cfg).substr(7) + ".json";
  entries.push_back(file_entry(cfg_name, cfg));
  nlohmann::json manifest = nlohmann::json::array({{{"Config", cfg_name}, {"RepoTags", {repo_tag}}, {"Layers", names}}});
  entries.push_back(file_entry("manifest.json", manifest.dump()));
  write_file(out, make_tar(entries));
  return out;
}

void tar_directory(const fs::path& dir, const fs::path& out) {
  std::string cmd = "tar -C '" + dir.string() + "' -cf '" + out.string() + "' .";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

Tree scan(const fs::path& root, const std::vector<std::string>& only) {
  Tree tree;
  auto visit = [&](const fs::path& p, const std::string& rel) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) throw std::runtime_error("lstat " + p.string());
    Seen s;
    s.mode = st.st_mode & 07777;
    s.uid = st.st_uid;
    s.gid = st.st_gid;
    s.mtime = st.st_mtime;
    s.nlink = S_ISDIR(st.st_mode) ? 0 : st.st_nlink;  // directory link counts differ by design
    s.ino = 0;
    if (S_ISDIR(st.st_mode))
      s.type = 'd';
    else if (S_ISREG(st.st_mode)) {
      s.type = 'f';
      s.content_hash = sha256(read_file(p));
    } else if (S_ISLNK(st.st_mode)) {
      s.type = 'l';
      s.target = fs::read_symlink(p).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      s.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
      s.dev_major = major(st.st_rdev);
      s.dev_minor = minor(st.st_rdev);
    } else if (S_ISFIFO(st.st_mode))
      s.type = 'p';
    else
      s.type = 's';
    char names[8192];
    ssize_t n = ::llistxattr(p.c_str(), names, sizeof names);
    for (ssize_t i = 0; i < n;) {
      std::string key(names + i);
      i += ssize_t(key.size()) + 1;
      char value[4096];
      ssize_t vn = ::lgetxattr(p.c_str(), key.c_str(), value, sizeof value);
      if (vn >= 0) s.xattrs[key] = std::string(value, size_t(vn));
    }
    tree[rel] = s;
  };
  std::vector<std::string> starts = only.empty() ? std::vector<std::string>{""} : only;
  for (auto& start : starts) {
    fs::path base = start.empty() ? root : root / start;
    if (!start.empty()) visit(base, start);
    if (!fs::is_directory(fs::symlink_status(base))) continue;
    for (auto it = fs::recursive_directory_iterator(base); it != fs::recursive_directory_iterator(); ++it)
      visit(it->path(), it->path().lexically_relative(root).string());
  }
  return tree;
}

std::string describe(const std::string& path, const Seen& s) {
  std::ostringstream o;
  o << path << ": type=" << s.type << " mode=" << std::oct << s.mode << std::dec << " owner=" << s.uid << ":" << s.gid
    << " mtime=" << s.mtime << " nlink=" << s.nlink << " target=" << s.target << " hash=" << s.content_hash.substr(0, 19)
    << " dev=" << s.dev_major << "," << s.dev_minor << " xattrs=" << s.xattrs.size();
  return o.str();
}

bool running_as_root() { return ::geteuid() == 0; }

namespace {
std::vector<fs::path>& scratch_dirs() {
  static std::vector<fs::path> dirs;
  return dirs;
}
void remove_scratch_dirs() {
  std::error_code ec;
  for (auto& d : scratch_dirs()) fs::remove_all(d, ec);
}
}  // namespace

fs::path scratch_dir(const std::string& name) {
  fs::path base = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "oci" / "scratch" / (name + "-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  if (scratch_dirs().empty()) std::atexit(remove_scratch_dirs);
  scratch_dirs().push_back(base);
  return base;
}

}  // namespace ocitest
