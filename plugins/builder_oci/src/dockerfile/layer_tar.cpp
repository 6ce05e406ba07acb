// An overlayfs upper folder as an OCI layer: walked in byte order, whiteout
// devices become .wh.NAME, opaque folders get .wh..wh..opq, overlayfs' own
// xattrs stay out: trusted.overlay.* as root's overlay writes them, user.overlay.*
// as a rootless one (mounted with userxattr in a user namespace) does. The uncompressed tar is hashed (diff_id) on its way into
// zstd, and the compressed bytes are hashed (digest) on their way to disk.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/layer_store.hpp"
#include "nemokit/runtime/fd_io.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

// zstd through libarchive's "raw" format: one entry whose data is the tar.
class ZstdSink {
 public:
  explicit ZstdSink(int fd) : fd_(fd), a_(archive_write_new()) {
    archive_write_set_format_raw(a_);
    archive_write_add_filter_zstd(a_);
    archive_write_set_filter_option(a_, "zstd", "compression-level", "3");
    archive_write_set_bytes_per_block(a_, 0);
    if (archive_write_open(a_, this, nullptr, out_cb, nullptr) != ARCHIVE_OK) fail();
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "layer.tar");
    archive_entry_set_filetype(e, AE_IFREG);
    int rc = archive_write_header(a_, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) fail();
  }
  ~ZstdSink() { archive_write_free(a_); }

  void write(const void* data, size_t size) {
    tar_hash.update(data, size);
    if (archive_write_data(a_, data, size) < 0) fail();
  }
  void finish() {
    if (archive_write_close(a_) != ARCHIVE_OK) fail();
  }

  rt::Sha256 tar_hash, blob_hash;
  uint64_t blob_size = 0;

 private:
  [[noreturn]] void fail() {
    throw BuildError(std::string("zstd: ") + (archive_error_string(a_) ? archive_error_string(a_) : "write failed"));
  }
  static la_ssize_t out_cb(struct archive*, void* self_ptr, const void* buf, size_t n) {
    auto* self = static_cast<ZstdSink*>(self_ptr);
    self->blob_hash.update(buf, n);
    self->blob_size += n;
    return rt::write_all(self->fd_, buf, n) ? la_ssize_t(n) : -1;
  }
  int fd_;
  struct archive* a_;
};

la_ssize_t write_cb(struct archive*, void* self, const void* buf, size_t n) {
  try {
    static_cast<ZstdSink*>(self)->write(buf, n);
    return la_ssize_t(n);
  } catch (...) {
    return -1;
  }
}

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0 ||
         name.rfind("user.fuseoverlayfs.", 0) == 0;  // fuse-overlayfs' own (src/dockerfile/fuse_overlay.cpp)
}

// An opaque folder hides everything below it in lower layers. Overlayfs marks it "y"; rootless
// overlayfs (userxattr) uses the user.* form of the same attribute.
bool is_opaque(const fs::path& p) {
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"}) {
    char v[8];
    ssize_t n = lgetxattr(p.c_str(), name, v, sizeof v);
    if (n == 1 && v[0] == 'y') return true;
  }
  return false;
}

struct Walker {
  struct archive* a;
  fs::path root;
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  uint64_t entries = 0;

  void check(int rc, const std::string& path) {
    if (rc < ARCHIVE_WARN) throw BuildError("layer tar: " + path + ": " + archive_error_string(a));
  }

  void add_xattrs(struct archive_entry* e, const fs::path& p) {
    ssize_t n = llistxattr(p.c_str(), nullptr, 0);
    if (n <= 0) return;
    std::vector<char> names(static_cast<size_t>(n));
    n = llistxattr(p.c_str(), names.data(), names.size());
    for (ssize_t i = 0; i < n;) {
      std::string name(&names[size_t(i)]);
      i += ssize_t(name.size()) + 1;
      if (is_overlay_xattr(name)) continue;
      ssize_t vs = lgetxattr(p.c_str(), name.c_str(), nullptr, 0);
      if (vs < 0) continue;
      std::vector<char> v(static_cast<size_t>(vs) + 1);
      vs = lgetxattr(p.c_str(), name.c_str(), v.data(), v.size());
      if (vs >= 0) archive_entry_xattr_add_entry(e, name.c_str(), v.data(), size_t(vs));
    }
  }

  void header(struct archive_entry* e, const std::string& rel) {
    check(archive_write_header(a, e), rel);
    ++entries;
  }

  void whiteout(const std::string& rel) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, rel.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0);
    archive_entry_set_size(e, 0);
    header(e, rel);
    archive_entry_free(e);
  }

  void walk(const std::string& rel_dir) {
    fs::path dir = rel_dir.empty() ? root : root / rel_dir;
    std::vector<std::string> names;
    for (auto& d : fs::directory_iterator(dir)) names.push_back(d.path().filename().string());
    std::sort(names.begin(), names.end());
    for (auto& name : names) {
      std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      fs::path p = root / rel;
      struct stat st;
      if (lstat(p.c_str(), &st) != 0) sys_fail("lstat " + p.string());
      if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        whiteout(rel_dir.empty() ? ".wh." + name : rel_dir + "/.wh." + name);
        continue;
      }
      if (S_ISSOCK(st.st_mode)) continue;  // sockets do not go into images
      struct archive_entry* e = archive_entry_new();
      archive_entry_copy_stat(e, &st);
      archive_entry_set_pathname(e, S_ISDIR(st.st_mode) ? (rel + "/").c_str() : rel.c_str());
      archive_entry_set_uname(e, "");
      archive_entry_set_gname(e, "");
      add_xattrs(e, p);
      if (S_ISLNK(st.st_mode)) {
        std::vector<char> buf(static_cast<size_t>(st.st_size) + 4097);
        ssize_t n = readlink(p.c_str(), buf.data(), buf.size() - 1);
        if (n < 0) sys_fail("readlink " + p.string());
        archive_entry_set_symlink(e, std::string(buf.data(), size_t(n)).c_str());
        header(e, rel);
      } else if (S_ISREG(st.st_mode)) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        if (st.st_nlink > 1 && links.count(key)) {
          archive_entry_set_size(e, 0);
          archive_entry_set_hardlink(e, links[key].c_str());
          header(e, rel);
        } else {
          if (st.st_nlink > 1) links[key] = rel;
          header(e, rel);
          int fd = open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0) sys_fail("open " + p.string());
          std::vector<char> buf(1 << 20);
          ssize_t n;
          while ((n = read(fd, buf.data(), buf.size())) > 0)
            if (archive_write_data(a, buf.data(), size_t(n)) < 0) {
              close(fd);
              check(ARCHIVE_FATAL, rel);
            }
          close(fd);
          if (n < 0) sys_fail("read " + p.string());
        }
      } else {
        header(e, rel);
      }
      archive_entry_free(e);
      if (S_ISDIR(st.st_mode)) {
        if (is_opaque(p)) whiteout(rel + "/.wh..wh..opq");
        walk(rel);
      }
    }
  }
};

}  // namespace

LayerRef write_layer_blob(const fs::path& upper, const fs::path& blob, uint64_t& entries) {
  int fd = open(blob.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) sys_fail("creating " + blob.string());
  ZstdSink sink(fd);
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_per_block(a, 10240);
  archive_write_set_bytes_in_last_block(a, 1);
  Walker w{a, upper, {}, 0};
  try {
    if (archive_write_open(a, &sink, nullptr, write_cb, nullptr) != ARCHIVE_OK)
      throw BuildError(std::string("layer tar: ") + archive_error_string(a));
    w.walk("");
    if (archive_write_close(a) != ARCHIVE_OK) throw BuildError(std::string("layer tar: ") + archive_error_string(a));
    archive_write_free(a);
    sink.finish();
  } catch (...) {
    archive_write_free(a);
    close(fd);
    throw;
  }
  if (fsync(fd) != 0) sys_fail("fsync " + blob.string());
  close(fd);
  entries = w.entries;
  LayerRef ref;
  ref.diff_id = sink.tar_hash.finish_digest();
  ref.digest = sink.blob_hash.finish_digest();
  ref.size = sink.blob_size;
  ref.media_type = "application/vnd.oci.image.layer.v1.tar+zstd";
  return ref;
}

}  // namespace nemokit::dockerfile
