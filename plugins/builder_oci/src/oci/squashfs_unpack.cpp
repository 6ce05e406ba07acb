// libsquashfs' read path (sqfs_dir_reader_get_full_hierarchy + sqfs_data_reader) into plain
// files. Folders get their mode and times after their children, so a read-only folder is still
// filled and the times are not changed by what is written in it.
#include "nemokit/oci/squashfs_unpack.hpp"

#include <fcntl.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir_reader.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/super.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_reader.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "nemokit/oci/error.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::oci {
namespace fs = std::filesystem;

namespace {

template <typename T>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p) sqfs_destroy(p);
  }
};

class Unpacker {
 public:
  Unpacker(const fs::path& image, const fs::path& dest) : image_(image), dest_(dest) {
    file_.p = sqfs_open_file(image.c_str(), SQFS_FILE_OPEN_READ_ONLY);
    if (!file_.p) fail("cannot open", errno);
    check(sqfs_super_read(&super_, file_.p), "reading the super block");
    sqfs_compressor_config_t cfg;
    check(sqfs_compressor_config_init(&cfg, SQFS_COMPRESSOR(super_.compression_id), super_.block_size, SQFS_COMP_FLAG_UNCOMPRESS),
          "compressor");
    check(sqfs_compressor_create(&cfg, &cmp_.p), "compressor");
    ids_.p = sqfs_id_table_create(0);
    if (!ids_.p) fail("out of memory", ENOMEM);
    check(sqfs_id_table_read(ids_.p, file_.p, &super_, cmp_.p), "reading the id table");
    dirs_.p = sqfs_dir_reader_create(&super_, cmp_.p, file_.p, 0);
    data_.p = sqfs_data_reader_create(file_.p, super_.block_size, cmp_.p, 0);
    if (!dirs_.p || !data_.p) fail("out of memory", ENOMEM);
    check(sqfs_data_reader_load_fragment_table(data_.p, &super_), "reading the fragment table");
    if (!(super_.flags & SQFS_FLAG_NO_XATTRS)) {
      xattrs_.p = sqfs_xattr_reader_create(0);
      if (!xattrs_.p) fail("out of memory", ENOMEM);
      check(sqfs_xattr_reader_load(xattrs_.p, &super_, file_.p, cmp_.p), "reading the xattr table");
    }
  }

  UnpackResult run() {
    sqfs_tree_node_t* root = nullptr;
    check(sqfs_dir_reader_get_full_hierarchy(dirs_.p, ids_.p, nullptr, 0, &root), "reading the folders");
    try {
      for (sqfs_tree_node_t* c = root->children; c; c = c->next) write(c, dest_);
      finish(root, dest_);
    } catch (...) {
      sqfs_dir_tree_destroy(root);
      throw;
    }
    sqfs_dir_tree_destroy(root);
    return result_;
  }

 private:
  [[noreturn]] void fail(const std::string& what, int err) const {
    throw Error(image_.string() + ": " + what + (err ? std::string(": ") + std::strerror(err) : ""));
  }
  void check(int rc, const std::string& what) const {
    if (rc != 0) throw Error(image_.string() + ": " + what + ": libsquashfs error " + std::to_string(rc));
  }

  void write(sqfs_tree_node_t* n, const fs::path& parent) {
    const char* name = reinterpret_cast<const char*>(n->name);
    if (!*name || std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0 || std::strchr(name, '/'))
      throw Error(image_.string() + ": unsafe entry name '" + std::string(name) + "'");
    fs::path p = parent / name;
    const sqfs_inode_generic_t* ino = n->inode;
    mode_t mode = ino->base.mode & 07777;
    ++result_.entries;
    // A hard link: the same inode seen before.
    if (ino->base.type != SQFS_INODE_DIR && ino->base.type != SQFS_INODE_EXT_DIR) {
      auto [it, fresh] = links_.emplace(ino->base.inode_number, p);
      if (!fresh) {
        if (link(it->second.c_str(), p.c_str()) != 0) fail("hard link " + p.string(), errno);
        return;
      }
    }
    switch (ino->base.type) {
      case SQFS_INODE_DIR:
      case SQFS_INODE_EXT_DIR:
        if (mkdir(p.c_str(), 0700) != 0) fail("mkdir " + p.string(), errno);
        for (sqfs_tree_node_t* c = n->children; c; c = c->next) write(c, p);
        finish(n, p);
        return;
      case SQFS_INODE_FILE:
      case SQFS_INODE_EXT_FILE:
        write_file(ino, p);
        break;
      case SQFS_INODE_SLINK:
      case SQFS_INODE_EXT_SLINK: {
        std::string target(reinterpret_cast<const char*>(ino->extra), ino->data.slink.target_size);
        if (symlink(target.c_str(), p.c_str()) != 0) fail("symlink " + p.string(), errno);
        break;
      }
      case SQFS_INODE_FIFO:
      case SQFS_INODE_EXT_FIFO:
        if (mkfifo(p.c_str(), 0600) != 0) fail("mkfifo " + p.string(), errno);
        break;
      case SQFS_INODE_SOCKET:
      case SQFS_INODE_EXT_SOCKET:
        return;   // nothing to run from; enroot and Docker leave them out too
      default: {  // character and block devices
        uint32_t dev = ino->base.type == SQFS_INODE_BDEV || ino->base.type == SQFS_INODE_CDEV ? ino->data.dev.devno
                                                                                              : ino->data.dev_ext.devno;
        bool block = ino->base.type == SQFS_INODE_BDEV || ino->base.type == SQFS_INODE_EXT_BDEV;
        // The squashfs encoding of a device number: minor's low 8 bits, major, minor's high bits.
        dev_t d = makedev((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00));
        if (mknod(p.c_str(), (block ? S_IFBLK : S_IFCHR) | 0600, d) != 0) {
          if (errno != EPERM) fail("mknod " + p.string(), errno);
          ++result_.skipped;  // a user namespace may not make devices; /dev is mounted anyway
          links_.erase(ino->base.inode_number);
          return;
        }
      }
    }
    finish(n, p);
  }

  void write_file(const sqfs_inode_generic_t* ino, const fs::path& p) {
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("creating " + p.string(), errno);
    sqfs_u64 size = 0;
    sqfs_inode_get_file_size(ino, &size);
    std::vector<char> buf(1 << 20);
    for (sqfs_u64 off = 0; off < size;) {
      sqfs_u32 want = sqfs_u32(std::min<sqfs_u64>(buf.size(), size - off));
      sqfs_s32 got = sqfs_data_reader_read(data_.p, ino, off, buf.data(), want);
      if (got <= 0) {
        close(fd);
        throw Error(image_.string() + ": reading " + p.string() + ": libsquashfs error " + std::to_string(got));
      }
      if (!rt::write_all(fd, buf.data(), size_t(got))) {
        int e = errno;
        close(fd);
        fail("writing " + p.string(), e);
      }
      off += sqfs_u64(got);
      result_.bytes += sqfs_u64(got);
    }
    if (close(fd) != 0) fail("writing " + p.string(), errno);
  }

  // Owner, then mode (chown clears set-uid bits), xattrs, times.
  void finish(sqfs_tree_node_t* n, const fs::path& p) {
    const sqfs_inode_generic_t* ino = n->inode;
    bool link = S_ISLNK(ino->base.mode);
    if (lchown(p.c_str(), n->uid, n->gid) != 0) {
      // EINVAL: an id this user namespace does not map (a user without a subordinate range).
      if (errno != EINVAL) fail("chown " + p.string(), errno);
      ++result_.owners_kept;
    }
    if (!link && chmod(p.c_str(), ino->base.mode & 07777) != 0) fail("chmod " + p.string(), errno);
    set_xattrs(ino, p);
    struct timespec t[2] = {{time_t(ino->base.mod_time), 0}, {time_t(ino->base.mod_time), 0}};
    if (utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) fail("times of " + p.string(), errno);
  }

  // xattrs the caller may not set (trusted.* in a user namespace) are left out: they change
  // nothing about running the image.
  void set_xattrs(const sqfs_inode_generic_t* ino, const fs::path& p) {
    sqfs_u32 idx = 0xffffffff;
    if (!xattrs_.p || sqfs_inode_get_xattr_index(ino, &idx) != 0 || idx == 0xffffffff) return;
    sqfs_xattr_id_t desc;
    check(sqfs_xattr_reader_get_desc(xattrs_.p, idx, &desc), "xattrs of " + p.string());
    check(sqfs_xattr_reader_seek_kv(xattrs_.p, &desc), "xattrs of " + p.string());
    for (sqfs_u32 i = 0; i < desc.count; ++i) {
      sqfs_xattr_entry_t* key = nullptr;
      sqfs_xattr_value_t* value = nullptr;
      check(sqfs_xattr_reader_read_key(xattrs_.p, &key), "xattrs of " + p.string());
      int rc = sqfs_xattr_reader_read_value(xattrs_.p, key, &value);
      if (rc != 0) {
        sqfs_free(key);
        check(rc, "xattrs of " + p.string());
      }
      // libsquashfs 1.2 hands back the whole name ("user.note", NUL-terminated; `size` counts the
      // part after the prefix); the prefix is added only where it is missing.
      const char* prefix = sqfs_get_xattr_prefix(SQFS_XATTR_TYPE(key->type & SQFS_XATTR_PREFIX_MASK));
      std::string name = reinterpret_cast<const char*>(key->key);
      if (prefix && name.rfind(prefix, 0) != 0) name = prefix + name;
      // Overlayfs' own markers stay out: the tree becomes an overlay's lower folder, and an
      // image may not steer how that overlay reads it.
      if (name.rfind("trusted.overlay.", 0) != 0 && name.rfind("user.overlay.", 0) != 0)
        lsetxattr(p.c_str(), name.c_str(), value->value, value->size, 0);
      sqfs_free(key);
      sqfs_free(value);
    }
  }

  fs::path image_, dest_;
  sqfs_super_t super_{};
  Owned<sqfs_file_t> file_;
  Owned<sqfs_compressor_t> cmp_;
  Owned<sqfs_id_table_t> ids_;
  Owned<sqfs_dir_reader_t> dirs_;
  Owned<sqfs_data_reader_t> data_;
  Owned<sqfs_xattr_reader_t> xattrs_;
  std::map<sqfs_u32, fs::path> links_;
  UnpackResult result_;
};

}  // namespace

UnpackResult unpack_squashfs(const fs::path& image, const fs::path& dest) { return Unpacker(image, dest).run(); }

}  // namespace nemokit::oci
