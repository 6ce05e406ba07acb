#include "nemokit/dockerfile/copy_step.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "nemokit/dockerfile/rootfs_path.hpp"
#include "nemokit/dockerfile/user_db.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;

namespace {

struct Owner {
  bool fixed = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

class Copier {
 public:
  Copier(const CopyOptions& o, Owner owner) : o_(o), owner_(owner) {}

  [[noreturn]] void fail(const std::string& msg) const { throw BuildError(o_.what + ": " + msg); }

  void set_meta(const fs::path& dst, const struct stat& st) {
    uid_t uid = owner_.fixed ? owner_.uid : (o_.keep_owner ? st.st_uid : 0);
    gid_t gid = owner_.fixed ? owner_.gid : (o_.keep_owner ? st.st_gid : 0);
    if (lchown(dst.c_str(), uid, gid) != 0) fail("chown " + dst.string() + ": " + std::strerror(errno));
    if (!S_ISLNK(st.st_mode)) {
      mode_t mode = o_.chmod ? mode_t(*o_.chmod) : (st.st_mode & 07777);
      if (chmod(dst.c_str(), mode) != 0) fail("chmod " + dst.string() + ": " + std::strerror(errno));
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW);
  }

  // Clears the way for a non-folder at dst.
  void make_room(const fs::path& dst) {
    struct stat st;
    if (lstat(dst.c_str(), &st) != 0) return;
    if (S_ISDIR(st.st_mode)) fail("cannot overwrite folder " + dst.string() + " with a non-folder");
    if (unlink(dst.c_str()) != 0) fail("replacing " + dst.string() + ": " + std::strerror(errno));
  }

  void copy_file_data(const fs::path& src, const fs::path& dst) {
    int in = open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) fail(src.string() + ": " + std::strerror(errno));
    int out = open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      close(in);
      fail(dst.string() + ": " + std::strerror(errno));
    }
    std::vector<char> buf(1 << 20);
    ssize_t n;
    // write_all retries a short write, so a full disk reports ENOSPC (a plain write() that
    // stored part of the buffer set no errno, and the message gave a stale one); the error
    // is kept before close() may change errno.
    while ((n = read(in, buf.data(), buf.size())) > 0)
      if (!rt::write_all(out, buf.data(), size_t(n))) {
        const int err = errno;
        close(in);
        close(out);
        fail("writing " + dst.string() + ": " + std::strerror(err));
      }
    const int read_err = errno;
    close(in);
    if (close(out) != 0) fail("writing " + dst.string() + ": " + std::strerror(errno));
    if (n < 0) fail("reading " + src.string() + ": " + std::strerror(read_err));
  }

  // Copies src (never following a symlink at src itself) to dst.
  void copy_entry(const fs::path& src, const fs::path& dst, const std::string& rel_src) {
    struct stat st;
    if (lstat(src.c_str(), &st) != 0) fail(src.string() + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) {
      struct stat dt;
      if (lstat(dst.c_str(), &dt) != 0) {
        if (mkdir(dst.c_str(), 0755) != 0) fail("mkdir " + dst.string() + ": " + std::strerror(errno));
      } else if (!S_ISDIR(dt.st_mode)) {
        make_room(dst);
        if (mkdir(dst.c_str(), 0755) != 0) fail("mkdir " + dst.string() + ": " + std::strerror(errno));
      }
      copy_children(src, dst, rel_src);
      set_meta(dst, st);
    } else if (S_ISREG(st.st_mode)) {
      make_room(dst);
      copy_file_data(src, dst);
      set_meta(dst, st);
    } else if (S_ISLNK(st.st_mode)) {
      make_room(dst);
      std::string target = fs::read_symlink(src).string();
      if (symlink(target.c_str(), dst.c_str()) != 0) fail("symlink " + dst.string() + ": " + std::strerror(errno));
      set_meta(dst, st);
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      make_room(dst);
      if (mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0) fail("mknod " + dst.string() + ": " + std::strerror(errno));
      set_meta(dst, st);
    }
  }

  void copy_children(const fs::path& src, const fs::path& dst, const std::string& rel_src) {
    std::vector<std::string> names;
    for (auto& d : fs::directory_iterator(src)) names.push_back(d.path().filename().string());
    std::sort(names.begin(), names.end());
    for (auto& n : names) {
      std::string rel = rel_src.empty() ? n : rel_src + "/" + n;
      if (o_.ignore && o_.ignore->excluded(rel)) {
        struct stat st;
        if (!o_.ignore->has_exceptions() || lstat((src / n).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      }
      copy_entry(src / n, dst / n, rel);
    }
  }

  // ADD of a local tar: `a` is open at its first entry `e` (open_local_tar); unpacked into
  // the folder, and closed.
  void unpack(struct archive* a, struct archive_entry* e, const fs::path& src, const fs::path& dst_dir) {
    std::unique_ptr<struct archive, decltype(&archive_read_free)> reader(a, archive_read_free);
    fs::path old = fs::current_path();
    if (chdir(dst_dir.c_str()) != 0) fail("chdir " + dst_dir.string());
    struct archive* disk = archive_write_disk_new();
    archive_write_disk_set_options(disk, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                             ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                             ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    std::string err;
    do {
      if (owner_.fixed) {
        archive_entry_set_uid(e, owner_.uid);
        archive_entry_set_gid(e, owner_.gid);
      }
      if (archive_write_header(disk, e) < ARCHIVE_WARN) {
        err = archive_error_string(disk);
        break;
      }
      const void* buf;
      size_t size;
      la_int64_t off;
      int r;
      while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
        if (archive_write_data_block(disk, buf, size, off) < ARCHIVE_WARN) {
          err = archive_error_string(disk);
          break;
        }
      if (!err.empty()) break;
      if (r != ARCHIVE_EOF) {
        err = archive_error_string(a);
        break;
      }
      archive_write_finish_entry(disk);
    } while (archive_read_next_header(a, &e) == ARCHIVE_OK);
    archive_write_free(disk);
    if (chdir(old.c_str()) != 0) fail("chdir back");
    if (!err.empty()) fail(src.filename().string() + ": " + err);
  }

 private:
  const CopyOptions& o_;
  Owner owner_;
};

// A local tar (plain, gzip, bzip2, xz) open at its first entry, or nullptr when `src` is not one
// (ADD then copies it as a file).
struct archive* open_local_tar(const fs::path& src, struct archive_entry** first) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  if (archive_read_open_filename(a, src.c_str(), 1 << 16) != ARCHIVE_OK || archive_read_next_header(a, first) != ARCHIVE_OK) {
    archive_read_free(a);
    return nullptr;
  }
  return a;
}

std::string basename_of(const std::string& rel) {
  size_t s = rel.rfind('/');
  return s == std::string::npos ? rel : rel.substr(s + 1);
}

}  // namespace

unsigned parse_chmod(const std::string& value, const Location& where) {
  if (value.empty() || value.size() > 4 || value.find_first_not_of("01234567") != std::string::npos)
    throw BuildError(where.str() + ": --chmod=" + value + ": expected an octal mode such as 755");
  return unsigned(std::stoul(value, nullptr, 8));
}

void copy_into_root(const fs::path& dest_root, const std::vector<CopySource>& sources, const std::string& dest, bool dest_is_dir,
                    const CopyOptions& options) {
  Owner owner;
  if (options.chown) {
    ResolvedUser u = resolve_user(dest_root, *options.chown);
    owner = {true, u.uid, u.gid};
  }
  Copier c(options, owner);
  // Folders the copy creates on the way to its destination belong to the --chown owner too,
  // as Docker and buildah make them.
  auto make_dirs = [&](const std::string& path) { return mkdir_in_root(dest_root, path, owner.uid, owner.gid); };
  if (sources.size() > 1 && !dest_is_dir)
    c.fail("when copying more than one source, the destination must be a folder and end with '/'");
  fs::path dest_host = resolve_in_root(dest_root, dest, true);
  struct stat st;
  if (!dest_is_dir && lstat(dest_host.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) dest_is_dir = true;
  for (auto& s : sources) {
    if (s.is_heredoc) {
      fs::path dir = dest_is_dir ? make_dirs(dest) : make_dirs(fs::path(dest).parent_path().string());
      fs::path target = dest_is_dir ? dir / s.rel : resolve_in_root(dest_root, dest, true);
      c.make_room(target);
      int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0 || !rt::write_all(fd, s.content)) c.fail(target.string() + ": " + std::strerror(errno));
      close(fd);
      struct stat fake {};
      fake.st_mode = S_IFREG | 0644;
      clock_gettime(CLOCK_REALTIME, &fake.st_mtim);
      fake.st_atim = fake.st_mtim;
      c.set_meta(target, fake);
      continue;
    }
    fs::path src = resolve_in_root(s.root, s.rel, true);
    if (lstat(src.c_str(), &st) != 0) c.fail(s.rel + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) {
      fs::path dir = make_dirs(dest);
      c.copy_children(src, dir, s.rel);
      continue;
    }
    struct archive_entry* first = nullptr;
    if (struct archive* tar =
            options.unpack_archives && !s.never_unpack && S_ISREG(st.st_mode) ? open_local_tar(src, &first) : nullptr) {
      c.unpack(tar, first, src, make_dirs(dest));
      continue;
    }
    fs::path target;
    if (dest_is_dir) {
      target = make_dirs(dest) / basename_of(s.rel.empty() ? src.filename().string() : s.rel);
    } else {
      make_dirs(fs::path(dest).parent_path().string());
      target = resolve_in_root(dest_root, dest, true);
    }
    c.copy_entry(src, target, s.rel);
  }
}

}  // namespace nemokit::dockerfile
