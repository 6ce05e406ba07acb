#include "nemokit/dockerfile/layer_store.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include <atomic>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "nemokit/dockerfile/child.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/exec_image.hpp"
#include "nemokit/dockerfile/mounts.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/oci/blob_store.hpp"
#include "nemokit/oci/layer_reader.hpp"
#include "nemokit/oci/layer_squashfs.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/fd_io.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void sys_fail(const std::string& what) { throw BuildError(what + ": " + std::strerror(errno)); }

std::string hex_of(const std::string& digest, const std::string& what) {
  if (!rt::is_sha256_digest(digest)) throw BuildError(what + ": unsupported digest '" + digest + "'");
  return digest.substr(7);
}

std::string oci_media_type(const std::string& given, const char* magic, size_t n) {
  if (given == "application/vnd.oci.image.layer.v1.tar" || given == "application/vnd.oci.image.layer.v1.tar+gzip" ||
      given == "application/vnd.oci.image.layer.v1.tar+zstd")
    return given;
  if (given == "application/vnd.docker.image.rootfs.diff.tar.gzip") return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (n >= 2 && uint8_t(magic[0]) == 0x1f && uint8_t(magic[1]) == 0x8b) return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (n >= 4 && uint8_t(magic[0]) == 0x28 && uint8_t(magic[1]) == 0xb5 && uint8_t(magic[2]) == 0x2f && uint8_t(magic[3]) == 0xfd)
    return "application/vnd.oci.image.layer.v1.tar+zstd";
  return "application/vnd.oci.image.layer.v1.tar";
}

// Rootless overlayfs (userxattr) reads only the user.* form; a user namespace may not set
// trusted.*. The answer comes from /proc: ask before any chroot.
const char* opaque_marker() { return in_user_namespace() ? "user.overlay.opaque" : "trusted.overlay.opaque"; }

// In a chrooted child: the layer's entries written to disk in overlayfs form. `sink` gets the
// blob's bytes as they are read; returns the blob's digest.
std::string extract_overlay_form(const oci::Layer& layer, const std::string& label, const fs::path& dest,
                                 const oci::LayerReader::StoredSink& sink) {
  oci::LayerReader reader(layer, label, sink);
  const char* marker = opaque_marker();
  if (chroot(dest.c_str()) != 0 || chdir("/") != 0) sys_fail("chroot " + dest.string());
  struct archive* disk = archive_write_disk_new();
  archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                           ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                           ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  std::vector<std::string> opaque;
  while (archive_entry* in = reader.next()) {
    std::string path = archive_entry_pathname(in) ? archive_entry_pathname(in) : "";
    auto norm = oci::normalize_member_path(path);
    if (!norm || norm->empty()) {
      if (norm) continue;  // "./" itself
      throw BuildError(label + ": unsafe entry '" + path + "'");
    }
    size_t slash = norm->rfind('/');
    std::string dir = slash == std::string::npos ? "" : norm->substr(0, slash);
    std::string base = slash == std::string::npos ? *norm : norm->substr(slash + 1);
    archive_entry* e = archive_entry_clone(in);
    archive_entry_set_pathname(e, norm->c_str());
    if (base == ".wh..wh..opq") {
      opaque.push_back(dir);
      archive_entry_free(e);
      continue;
    }
    if (base.rfind(".wh.", 0) == 0) {
      std::string hidden = base.substr(4);
      if (hidden.empty() || hidden.rfind(".wh.", 0) == 0) throw BuildError(label + ": invalid whiteout '" + path + "'");
      archive_entry_free(e);
      e = archive_entry_new();
      archive_entry_set_pathname(e, (dir.empty() ? hidden : dir + "/" + hidden).c_str());
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_perm(e, 0);
      archive_entry_set_rdev(e, makedev(0, 0));
    }
    // A layer may not forge overlayfs' own attributes.
    if (archive_entry_xattr_count(e) > 0) {
      std::vector<std::pair<std::string, std::string>> keep;
      const char* name;
      const void* value;
      size_t size;
      archive_entry_xattr_reset(e);
      while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
        if (std::string(name).rfind("trusted.overlay.", 0) != 0 && std::string(name).rfind("user.overlay.", 0) != 0)
          keep.emplace_back(name, std::string(static_cast<const char*>(value), size));
      archive_entry_xattr_clear(e);
      for (auto& [n, v] : keep) archive_entry_xattr_add_entry(e, n.c_str(), v.data(), v.size());
    }
    if (const char* hl = archive_entry_hardlink(e)) {
      auto t = oci::normalize_member_path(hl);
      if (!t || t->empty()) throw BuildError(label + ": hard link '" + path + "' leaves the layer");
      archive_entry_set_hardlink(e, t->c_str());
    }
    if (archive_write_header(disk, e) < ARCHIVE_WARN) {
      std::string msg = archive_error_string(disk) ? archive_error_string(disk) : "write failed";
      archive_entry_free(e);
      throw BuildError(label + ": " + path + ": " + msg);
    }
    if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 && !archive_entry_hardlink(e))
      reader.read_data([&](const void* p, size_t n) {
        if (archive_write_data(disk, p, n) < 0) throw BuildError(label + ": " + path + ": " + archive_error_string(disk));
      });
    if (archive_write_finish_entry(disk) < ARCHIVE_WARN)
      throw BuildError(label + ": " + path + ": " + archive_error_string(disk));
    archive_entry_free(e);
  }
  archive_write_close(disk);
  archive_write_free(disk);
  for (auto& d : opaque) {
    std::string p = d.empty() ? "/" : "/" + d;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      if (mkdir(p.c_str(), 0755) != 0) sys_fail(label + ": opaque folder " + p);
    }
    if (lsetxattr(p.c_str(), marker, "y", 1, 0) != 0) sys_fail(label + ": marking " + p + " opaque");
  }
  return reader.stored_digest();
}

}  // namespace

// Layers unpacked in a user namespace differ on disk from root's: owners shifted into the user's
// subordinate range (or all the user's, with no range) and user.overlay.* markers. They live in a
// folder of their own, so a cache folder shared by root and rootless builds never mixes them.
namespace {
const char* layers_folder() { return in_user_namespace() ? "layers-userns" : "layers"; }

// Loop mounts need the loop devices and CAP_SYS_ADMIN (a container's root often lacks it).
bool loop_mounts_usable() {
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t effective = 0;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) effective = std::strtoull(line.c_str() + 7, nullptr, 16);
  if (!(effective & (uint64_t(1) << 21))) return false;  // CAP_SYS_ADMIN
  int fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}
}  // namespace

BaseLayerForm base_layer_form() {
  const char* v = std::getenv("NEMOKIT_BASE_LAYERS");
  const std::string want = v ? v : "";
  if (want == "folders") return BaseLayerForm::folders;
  if (want == "squashfs") return BaseLayerForm::squashfs;
  if (!want.empty())
    throw BuildError("NEMOKIT_BASE_LAYERS: '" + want + "' is neither squashfs (base layers kept as squashfs files and mounted) "
                     "nor folders (unpacked)");
  if (!in_user_namespace()) return loop_mounts_usable() ? BaseLayerForm::squashfs : BaseLayerForm::folders;
  // fuse-overlayfs over squashfuse lowers refuses to run the image's programs for its other
  // users (EOPNOTSUPP), so squashfs layers go with the kernel's overlayfs only.
  return !find_program("squashfuse").empty() && fuse_usable() && kernel_overlay_usable() ? BaseLayerForm::squashfs
                                                                                         : BaseLayerForm::folders;
}

std::optional<uint64_t> squashfs_block_cache_bytes() {
  const char* v = std::getenv("NEMOKIT_SQUASHFS_CACHE_MB");
  if (!v || !*v) return uint64_t(4096) << 20;
  char* end = nullptr;
  errno = 0;
  const unsigned long long mb = std::strtoull(v, &end, 10);
  if (*end || errno || v[0] == '-' || mb > (uint64_t(1) << 40))
    throw BuildError(std::string("NEMOKIT_SQUASHFS_CACHE_MB: '") + v +
                     "' is not a size in MiB (0 turns the squashfs block cache off)");
  if (mb == 0) return std::nullopt;
  return uint64_t(mb) << 20;
}

LayerStore::LayerStore(const fs::path& build_cache_dir) : root_(build_cache_dir / "build"), form_(base_layer_form()) {
  for (auto sub : {"blobs/sha256", layers_folder(), "tmp", "cache", "empty"}) fs::create_directories(root_ / sub);
  // Work folders of builds that were killed: their names carry the pid.
  std::error_code ec;
  for (auto& d : fs::directory_iterator(root_ / "tmp", ec)) {
    std::string name = d.path().filename().string();
    size_t a = name.find('-'), b = name.find('-', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    pid_t pid = pid_t(std::strtol(name.substr(a + 1, b - a - 1).c_str(), nullptr, 10));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(d.path(), ec);
  }
}

LayerStore::~LayerStore() {
  for (auto& [diff_id, m] : mounted_) {
    umount2(m.dir.c_str(), MNT_DETACH);
    if (m.fuse_pid > 0) {
      kill(m.fuse_pid, SIGKILL);
      while (waitpid(m.fuse_pid, nullptr, 0) < 0 && errno == EINTR) {}
    }
  }
  std::error_code ec;
  if (!mount_root_.empty()) fs::remove_all(mount_root_, ec);
}

fs::path LayerStore::folder_of(const LayerRef& l) const { return root_ / layers_folder() / hex_of(l.diff_id, "layer"); }
fs::path LayerStore::squashfs_of(const LayerRef& l) const {
  return root_ / layers_folder() / (hex_of(l.diff_id, "layer") + ".sqsh");
}

oci::SquashfsOptions LayerStore::squashfs_options() const {
  oci::SquashfsOptions options;
  if (auto cap = squashfs_block_cache_bytes()) {
    options.block_cache_dir = root_ / "squashfs-blocks";
    options.block_cache_max_bytes = *cap;
  }
  return options;
}

fs::path LayerStore::layer_dir(const LayerRef& l) const {
  fs::path folder = folder_of(l);
  if (form_ == BaseLayerForm::folders || fs::is_directory(folder)) return folder;
  fs::path image = squashfs_of(l);
  if (!fs::exists(image)) return folder;
  if (auto it = mounted_.find(l.diff_id); it != mounted_.end()) return it->second.dir;
  if (mount_root_.empty()) mount_root_ = temp_dir("lowers");
  fs::path point = mount_root_ / hex_of(l.diff_id, "layer");
  fs::create_directory(point);
  try {
    ImageLower shown;
    if (in_user_namespace()) {
      fs::path squashfuse = find_program("squashfuse");
      if (squashfuse.empty()) throw BuildError("squashfuse is not installed (Debian's squashfuse package)");
      shown = fuse_mount(squashfuse, image, point);
    } else {
      shown = kernel_mount(image, point);
    }
    mounted_[l.diff_id] = Mounted{point, shown.fuse_pid};
    return point;
  } catch (const BuildError& e) {
    // A machine where the file does not mount (no free loop device, a damaged file) still
    // builds, from the layer unpacked.
    std::cerr << "warning: " << e.what() << ": unpacking the layer instead (NEMOKIT_BASE_LAYERS=folders skips the mount)\n";
  }
  oci::Layer layer;
  fs::path blob = blob_path(l.digest);
  layer.blob = oci::BlobRange{blob, 0, l.size, blob.string()};
  layer.media_type = l.media_type;
  layer.digest = l.digest;
  layer.size = l.size;
  layer.diff_id = l.diff_id;
  unpack(layer, "layer " + l.diff_id.substr(0, 19), folder);
  return folder;
}
fs::path LayerStore::blob_path(const std::string& digest) const { return root_ / "blobs" / "sha256" / hex_of(digest, "blob"); }
fs::path LayerStore::empty_dir() const { return root_ / "empty"; }

bool LayerStore::tree_kept(const LayerRef& l) const {
  return fs::is_directory(folder_of(l)) || (form_ == BaseLayerForm::squashfs && fs::exists(squashfs_of(l)));
}

bool LayerStore::has(const LayerRef& l) const { return tree_kept(l) && fs::exists(blob_path(l.digest)); }

fs::path LayerStore::temp_dir(const std::string& hint) const {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  fs::path p = root_ / "tmp" /
               (hint + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(rd() % 100000));
  fs::create_directories(p);
  return p;
}

LayerRef LayerStore::import(const oci::Layer& layer, const std::string& label) {
  LayerRef ref;
  ref.diff_id = layer.diff_id;
  // A layer seen before is known by its diff_id: no need to hash its blob again.
  fs::path record = root_ / "cache" / ("diff-" + hex_of(ref.diff_id, label + ": diff_id") + ".json");
  if (fs::exists(record)) {
    try {
      std::ifstream in(record);
      auto j = nlohmann::json::parse(in);
      LayerRef known{ref.diff_id, j.at("digest"), j.at("mediaType"), j.at("size")};
      if ((!layer.digest || *layer.digest == known.digest) && has(known)) return known;
    } catch (const std::exception&) {
      // A damaged record only costs the work below.
    }
  }
  // The blob is kept byte for byte as stored, so the built image can point at it.
  char magic[4] = {0, 0, 0, 0};
  int in = open(layer.blob.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) sys_fail(layer.blob.name);
  size_t n = std::min<uint64_t>(4, layer.blob.size);
  oci::read_exact_at(in, layer.blob.offset, magic, n, layer.blob.name);
  close(in);
  ref.media_type = oci_media_type(layer.media_type, magic, n);
  ref.size = layer.blob.size;
  const bool blob_kept = layer.digest && fs::exists(blob_path(*layer.digest));
  if (blob_kept) ref.digest = *layer.digest;
  // The blob's copy and digest: made while the layer file is written when there is one to
  // write (one read of the blob for both), else by copying it here.
  fs::path tmp_blob;
  int out = -1;
  auto start_copy = [&] {
    tmp_blob = temp_dir("blob") / "blob";
    out = open(tmp_blob.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) sys_fail(tmp_blob.string());
  };
  auto keep_copy = [&](const std::string& digest) {
    if (close(out) != 0) sys_fail("writing " + tmp_blob.string());
    ref.digest = digest;
    if (layer.digest && *layer.digest != ref.digest)
      throw BuildError(label + ": blob digest " + ref.digest + " does not match " + *layer.digest);
    rt::commit_temp_file(tmp_blob, blob_path(ref.digest));
    fs::remove_all(tmp_blob.parent_path());
  };
  const bool tree_wanted = !tree_kept(ref);
  if (tree_wanted) {
    oci::BlobCopy copy;
    if (!blob_kept) {
      start_copy();
      copy.copy = [&](const void* p, size_t k) {
        if (!rt::write_all(out, p, k)) sys_fail("writing " + tmp_blob.string());
      };
    }
    if (form_ == BaseLayerForm::squashfs) {
      std::vector<std::string> warnings;
      oci::write_layer_squashfs(layer, label, squashfs_of(ref), squashfs_options(), opaque_marker(), warnings,
                                blob_kept ? nullptr : &copy);
      for (auto& w : warnings) std::cerr << "warning: " << w << "\n";
    } else {
      unpack(layer, label, folder_of(ref), blob_kept ? nullptr : &copy);
    }
    if (!blob_kept) keep_copy(copy.digest);
  } else if (!blob_kept) {
    start_copy();
    int from = open(layer.blob.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (from < 0) sys_fail(layer.blob.name);
    rt::Sha256 h;
    std::vector<char> buf(1 << 20);
    for (uint64_t off = 0; off < layer.blob.size;) {
      size_t k = size_t(std::min<uint64_t>(buf.size(), layer.blob.size - off));
      oci::read_exact_at(from, layer.blob.offset + off, buf.data(), k, layer.blob.name);
      h.update(buf.data(), k);
      if (!rt::write_all(out, buf.data(), k)) sys_fail("writing " + tmp_blob.string());
      off += k;
    }
    close(from);
    keep_copy(h.finish_digest());
  }
  rt::write_file_atomic(record, nlohmann::json{{"digest", ref.digest}, {"mediaType", ref.media_type}, {"size", ref.size}}.dump());
  return ref;
}

void LayerStore::unpack(const oci::Layer& layer, const std::string& label, const fs::path& folder,
                        oci::BlobCopy* blob_copy) const {
  fs::path tmp = temp_dir("extract");
  fs::path dest = tmp / "root";
  fs::create_directory(dest);
  std::string digest = run_in_child_for(
      [&] { return extract_overlay_form(layer, label, dest, blob_copy ? blob_copy->copy : oci::LayerReader::StoredSink{}); },
      label);
  if (blob_copy) blob_copy->digest = digest;
  fs::permissions(dest, fs::perms(0755));
  fs::rename(dest, folder);
  fs::remove_all(tmp);
}

std::optional<LayerRef> LayerStore::commit(const fs::path& upper) {
  fs::path tmp_blob = upper.parent_path() / "layer.tar.zst";
  uint64_t entries = 0;
  LayerRef ref = write_layer_blob(upper, tmp_blob, entries);
  if (entries == 0) {
    fs::remove(tmp_blob);
    return std::nullopt;
  }
  rt::commit_temp_file(tmp_blob, blob_path(ref.digest));
  if (!fs::exists(folder_of(ref))) fs::rename(upper, folder_of(ref));
  return ref;
}

}  // namespace nemokit::dockerfile
