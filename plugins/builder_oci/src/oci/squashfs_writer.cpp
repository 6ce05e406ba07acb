#include "nemokit/oci/squashfs_writer.hpp"

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "nemokit/oci/block_cache.hpp"
#include "nemokit/oci/error.hpp"

namespace nemokit::oci {
namespace {

void check(int ret, const char* what) {
  if (ret < 0) throw Error(std::string("squashfs: ") + what + " failed (libsquashfs error " + std::to_string(ret) + ")");
}

template <typename T>
struct SqfsPtr {
  T* p = nullptr;
  SqfsPtr() = default;
  SqfsPtr(const SqfsPtr&) = delete;
  SqfsPtr& operator=(const SqfsPtr&) = delete;
  ~SqfsPtr() { reset(); }
  void reset() {
    if (p) sqfs_destroy(p);
    p = nullptr;
  }
};

int compressor_id(const std::string& name) {
  if (name == "zstd") return SQFS_COMP_ZSTD;
  if (name == "gzip") return SQFS_COMP_GZIP;
  if (name == "xz") return SQFS_COMP_XZ;
  if (name == "lz4") return SQFS_COMP_LZ4;
  return -1;
}

uint32_t clamp_time(int64_t t) {
  if (t < 0) return 0;
  if (t > int64_t(UINT32_MAX)) return UINT32_MAX;
  return uint32_t(t);
}

uint16_t type_bits(NodeType t) {
  switch (t) {
    case NodeType::Directory:
      return S_IFDIR;
    case NodeType::Regular:
      return S_IFREG;
    case NodeType::Symlink:
      return S_IFLNK;
    case NodeType::CharDevice:
      return S_IFCHR;
    case NodeType::BlockDevice:
      return S_IFBLK;
    case NodeType::Fifo:
      return S_IFIFO;
    case NodeType::Socket:
      return S_IFSOCK;
    case NodeType::Whiteout:
      break;
  }
  return 0;
}

bool xattr_prefix_supported(const std::string& key) {
  return key.rfind("user.", 0) == 0 || key.rfind("trusted.", 0) == 0 || key.rfind("security.", 0) == 0;
}

}  // namespace

void validate(const SquashfsOptions& o) {
  if (compressor_id(o.compressor) < 0) throw Error("--comp: unknown compressor '" + o.compressor + "' (zstd, gzip, xz, lz4)");
  if (o.block_size < 4096 || o.block_size > (1u << 20) || (o.block_size & (o.block_size - 1)))
    throw Error("--block-size: " + std::to_string(o.block_size) + " is not a power of two between 4096 and 1048576");
  if (o.level) {
    int lo = 0, hi = 0;
    if (o.compressor == "zstd")
      lo = SQFS_ZSTD_MIN_LEVEL, hi = SQFS_ZSTD_MAX_LEVEL;
    else if (o.compressor == "gzip")
      lo = SQFS_GZIP_MIN_LEVEL, hi = SQFS_GZIP_MAX_LEVEL;
    else if (o.compressor == "xz")
      lo = SQFS_XZ_MIN_LEVEL, hi = SQFS_XZ_MAX_LEVEL;
    else
      throw Error("--level: the " + o.compressor + " compressor has no levels");
    if (*o.level < lo || *o.level > hi)
      throw Error("--level: " + std::to_string(*o.level) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi) +
                  " for " + o.compressor);
  }
}

struct SquashfsWriter::Impl {
  SquashfsOptions options;
  SqfsPtr<sqfs_file_t> file;
  SqfsPtr<sqfs_compressor_t> cmp, uncmp;
  // Data blocks go through the block cache when there is one; metadata never does (it differs
  // from image to image).
  std::shared_ptr<BlockCache> block_cache;
  SqfsPtr<sqfs_compressor_t> data_cmp;
  SqfsPtr<sqfs_block_writer_t> block_writer;
  SqfsPtr<sqfs_frag_table_t> frag_table;
  SqfsPtr<sqfs_id_table_t> ids;
  SqfsPtr<sqfs_xattr_writer_t> xattrs;
  SqfsPtr<sqfs_block_processor_t> processor;
  sqfs_super_t super{};
  // The processor updates body->inode until finish; keep every body alive.
  std::vector<std::shared_ptr<FileBody>> bodies;
  uint64_t data_in = 0;

  // Serialization state.
  struct Slot {
    uint32_t number = 0;
    uint64_t ref = 0;
    uint32_t links = 0;
    bool written = false;
  };
  std::unordered_map<const Node*, Slot> node_slots;
  std::unordered_map<const FileBody*, Slot> body_slots;
  uint32_t next_number = 1;
  int64_t max_mtime = 0;
  std::vector<std::string>* warnings = nullptr;
  SqfsPtr<sqfs_meta_writer_t> inode_writer, dir_meta;
  SqfsPtr<sqfs_dir_writer_t> dir_writer;

  // Stops the worker threads first, closes the output file last.
  void close_all() {
    processor.reset();
    data_cmp.reset();
    dir_writer.reset();
    dir_meta.reset();
    inode_writer.reset();
    block_writer.reset();
    xattrs.reset();
    ids.reset();
    frag_table.reset();
    file.reset();
    uncmp.reset();
    cmp.reset();
  }

  Slot& slot(const Node& n) {
    if (n.type == NodeType::Regular) return body_slots[n.body.get()];
    return node_slots[&n];
  }

  void number(const Node& dir) {
    for (auto& [name, child] : dir.children) {
      if (child->type == NodeType::Whiteout) continue;
      max_mtime = std::max(max_mtime, child->meta.mtime);
      if (child->type == NodeType::Directory) {
        number(*child);
        continue;
      }
      Slot& s = slot(*child);
      if (s.number == 0) s.number = next_number++;
      ++s.links;
    }
    node_slots[&dir].number = next_number++;
  }

  uint32_t xattr_index(const Metadata& meta, const std::string& path) {
    if (meta.xattrs.empty()) return 0xFFFFFFFF;
    check(sqfs_xattr_writer_begin(xattrs.p, 0), "xattr begin");
    bool any = false;
    for (auto& [key, value] : meta.xattrs) {
      if (!xattr_prefix_supported(key)) {
        warnings->push_back("/" + path + ": xattr '" + key + "' cannot be stored in squashfs; dropped");
        continue;
      }
      check(sqfs_xattr_writer_add(xattrs.p, key.c_str(), value.data(), value.size()), "xattr add");
      any = true;
    }
    uint32_t idx = 0xFFFFFFFF;
    check(sqfs_xattr_writer_end(xattrs.p, &idx), "xattr end");
    return any ? idx : 0xFFFFFFFF;
  }

  void set_base(sqfs_inode_generic_t* inode, const Node& n, uint32_t number) {
    uint16_t uid_idx, gid_idx;
    check(sqfs_id_table_id_to_index(ids.p, n.meta.uid, &uid_idx), "uid table");
    check(sqfs_id_table_id_to_index(ids.p, n.meta.gid, &gid_idx), "gid table");
    inode->base.mode = uint16_t(type_bits(n.type) | (n.meta.mode & 07777));
    inode->base.uid_idx = uid_idx;
    inode->base.gid_idx = gid_idx;
    inode->base.mod_time = clamp_time(options.fixed_mtime ? *options.fixed_mtime : n.meta.mtime);
    inode->base.inode_number = number;
  }

  uint64_t write_inode(const sqfs_inode_generic_t* inode) {
    uint64_t block = 0;
    uint32_t offset = 0;
    sqfs_meta_writer_get_position(inode_writer.p, &block, &offset);
    check(sqfs_meta_writer_write_inode(inode_writer.p, inode), "write inode");
    return (block << 16) | offset;
  }

  void write_leaf(const Node& n, const std::string& path) {
    Slot& s = slot(n);
    if (s.written) return;
    s.written = true;
    uint32_t xattr = xattr_index(n.meta, path);
    if (n.type == NodeType::Regular) {
      sqfs_inode_generic_t* inode = n.body->inode;
      if (!inode) throw Error("squashfs: /" + path + " has no data inode");
      set_base(inode, n, s.number);
      if (s.links > 1) {
        check(sqfs_inode_make_extended(inode), "extend inode");
        inode->data.file_ext.nlink = s.links;
      }
      if (xattr != 0xFFFFFFFF) check(sqfs_inode_set_xattr_index(inode, xattr), "xattr index");
      s.ref = write_inode(inode);
      return;
    }
    size_t payload = n.type == NodeType::Symlink ? n.symlink_target.size() : 0;
    auto* inode = static_cast<sqfs_inode_generic_t*>(std::calloc(1, sizeof(sqfs_inode_generic_t) + payload));
    if (!inode) throw Error("out of memory");
    std::unique_ptr<sqfs_inode_generic_t, decltype(&std::free)> guard(inode, &std::free);
    switch (n.type) {
      case NodeType::Symlink:
        inode->base.type = SQFS_INODE_SLINK;
        inode->data.slink.nlink = s.links;
        inode->data.slink.target_size = uint32_t(payload);
        inode->payload_bytes_available = inode->payload_bytes_used = uint32_t(payload);
        std::memcpy(inode->extra, n.symlink_target.data(), payload);
        break;
      case NodeType::CharDevice:
      case NodeType::BlockDevice:
        inode->base.type = n.type == NodeType::CharDevice ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
        inode->data.dev.nlink = s.links;
        // The kernel's new_decode_dev layout.
        inode->data.dev.devno = (n.dev_minor & 0xff) | ((n.dev_major & 0xfff) << 8) | ((n.dev_minor & ~0xffu) << 12);
        break;
      default:
        inode->base.type = n.type == NodeType::Fifo ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
        inode->data.ipc.nlink = s.links;
        break;
    }
    set_base(inode, n, s.number);
    if (xattr != 0xFFFFFFFF) check(sqfs_inode_set_xattr_index(inode, xattr), "xattr index");
    s.ref = write_inode(inode);
  }

  void write_dir(const Node& dir, const std::string& path, uint32_t parent_number) {
    Slot& me = node_slots[&dir];
    size_t subdirs = 0;
    for (auto& [name, child] : dir.children) {
      if (child->type == NodeType::Whiteout) continue;
      std::string child_path = path.empty() ? name : path + "/" + name;
      if (child->type == NodeType::Directory) {
        write_dir(*child, child_path, me.number);
        ++subdirs;
      } else {
        write_leaf(*child, child_path);
      }
    }
    check(sqfs_dir_writer_begin(dir_writer.p, 0), "directory begin");
    for (auto& [name, child] : dir.children) {
      if (child->type == NodeType::Whiteout) continue;
      Slot& s = slot(*child);
      uint16_t mode = uint16_t(type_bits(child->type) | (child->meta.mode & 07777));
      check(sqfs_dir_writer_add_entry(dir_writer.p, name.c_str(), s.number, s.ref, mode), "directory entry");
    }
    check(sqfs_dir_writer_end(dir_writer.p), "directory end");
    uint32_t xattr = xattr_index(dir.meta, path);
    sqfs_inode_generic_t* inode = sqfs_dir_writer_create_inode(dir_writer.p, 2 + subdirs, xattr, parent_number);
    if (!inode) throw Error("squashfs: cannot create directory inode for /" + path);
    std::unique_ptr<sqfs_inode_generic_t, decltype(&sqfs_free)> guard(inode, &sqfs_free);
    set_base(inode, dir, me.number);
    me.ref = write_inode(inode);
  }
};

SquashfsWriter::SquashfsWriter(const std::filesystem::path& path, const SquashfsOptions& options)
    : impl_(std::make_unique<Impl>()) {
  validate(options);
  Impl& m = *impl_;
  m.options = options;
  auto id = SQFS_COMPRESSOR(compressor_id(options.compressor));
  sqfs_compressor_config_t cfg;
  check(sqfs_compressor_config_init(&cfg, id, options.block_size, 0), "compressor config");
  if (options.level)
    cfg.level = uint32_t(*options.level);
  else if (id == SQFS_COMP_ZSTD)
    cfg.level = kDefaultZstdLevel;
  check(sqfs_compressor_create(&cfg, &m.cmp.p), "compressor");
  sqfs_compressor_config_t ucfg;
  check(sqfs_compressor_config_init(&ucfg, id, options.block_size, SQFS_COMP_FLAG_UNCOMPRESS), "decompressor config");
  check(sqfs_compressor_create(&ucfg, &m.uncmp.p), "decompressor");

  m.file.p = sqfs_open_file(path.c_str(), SQFS_FILE_OPEN_OVERWRITE);
  if (!m.file.p) throw Error(path.string() + ": cannot open for writing");
  check(sqfs_super_init(&m.super, options.block_size, 0, id), "super block init");
  check(sqfs_super_write(&m.super, m.file.p), "super block write");
  int opt = m.cmp.p->write_options(m.cmp.p, m.file.p);
  check(opt, "compressor options");
  if (opt > 0) m.super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

  m.block_writer.p = sqfs_block_writer_create(m.file.p, 4096, 0);
  m.frag_table.p = sqfs_frag_table_create(0);
  m.ids.p = sqfs_id_table_create(0);
  m.xattrs.p = sqfs_xattr_writer_create(0);
  if (!m.block_writer.p || !m.frag_table.p || !m.ids.p || !m.xattrs.p) throw Error("squashfs: out of memory");

  unsigned workers = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  sqfs_block_processor_desc_t desc{};
  desc.size = sizeof(desc);
  desc.max_block_size = options.block_size;
  desc.num_workers = workers;
  desc.max_backlog = std::max(64u, workers * 16);
  desc.cmp = m.cmp.p;
  if (!options.block_cache_dir.empty() && options.block_cache_max_bytes > 0) {
    const std::string setting = options.compressor + "-level" + std::to_string(cfg.level) + "-block" +
                                std::to_string(options.block_size);
    try {
      m.block_cache = std::make_shared<BlockCache>(options.block_cache_dir / setting, options.block_cache_max_bytes);
    } catch (const std::exception&) {
      // A cache folder that cannot be made only costs the compression.
    }
    if (m.block_cache) {
      auto* inner = static_cast<sqfs_compressor_t*>(sqfs_copy(m.cmp.p));
      if (!inner) throw Error("squashfs: out of memory");
      m.data_cmp.p = make_caching_compressor(inner, m.block_cache);
      desc.cmp = m.data_cmp.p;
    }
  }
  desc.wr = m.block_writer.p;
  desc.tbl = m.frag_table.p;
  desc.file = m.file.p;
  desc.uncmp = m.uncmp.p;
  check(sqfs_block_processor_create_ex(&desc, &m.processor.p), "block processor");
}

SquashfsWriter::~SquashfsWriter() {
  // The processor's threads must stop before the bodies they write into go.
  if (impl_) impl_->close_all();
}

void SquashfsWriter::begin_file(const std::shared_ptr<FileBody>& body) {
  impl_->bodies.push_back(body);
  check(sqfs_block_processor_begin_file(impl_->processor.p, &body->inode, nullptr, 0), "begin file");
}

void SquashfsWriter::append(const void* data, size_t size) {
  if (size == 0) return;  // libsquashfs expects data here
  impl_->data_in += size;
  check(sqfs_block_processor_append(impl_->processor.p, data, size), "append file data");
}

void SquashfsWriter::end_file() { check(sqfs_block_processor_end_file(impl_->processor.p), "end file"); }

SquashfsStats SquashfsWriter::finish(const MergedTree& tree, std::vector<std::string>& warnings) {
  Impl& m = *impl_;
  m.warnings = &warnings;
  check(sqfs_block_processor_finish(m.processor.p), "finish data blocks");

  m.number(tree.root());
  uint32_t inode_count = m.next_number - 1;
  m.inode_writer.p = sqfs_meta_writer_create(m.file.p, m.cmp.p, 0);
  m.dir_meta.p = sqfs_meta_writer_create(m.file.p, m.cmp.p, SQFS_META_WRITER_KEEP_IN_MEMORY);
  if (!m.inode_writer.p || !m.dir_meta.p) throw Error("squashfs: out of memory");
  m.dir_writer.p = sqfs_dir_writer_create(m.dir_meta.p, 0);
  if (!m.dir_writer.p) throw Error("squashfs: out of memory");

  m.super.inode_table_start = m.file.p->get_size(m.file.p);
  m.write_dir(tree.root(), "", inode_count + 1);
  check(sqfs_meta_writer_flush(m.inode_writer.p), "inode table");
  m.super.directory_table_start = m.file.p->get_size(m.file.p);
  check(sqfs_meta_writer_flush(m.dir_meta.p), "directory table");
  check(sqfs_meta_write_write_to_file(m.dir_meta.p), "directory table write");

  m.super.inode_count = inode_count;
  m.super.root_inode_ref = m.node_slots[&tree.root()].ref;
  m.super.modification_time = clamp_time(m.options.fixed_mtime ? *m.options.fixed_mtime : m.max_mtime);
  check(sqfs_frag_table_write(m.frag_table.p, m.file.p, &m.super, m.cmp.p), "fragment table");
  check(sqfs_id_table_write(m.ids.p, m.file.p, &m.super, m.cmp.p), "id table");
  check(sqfs_xattr_writer_flush(m.xattrs.p, m.file.p, &m.super, m.cmp.p), "xattr table");

  m.super.bytes_used = m.file.p->get_size(m.file.p);
  uint64_t padded = (m.super.bytes_used + 4095) / 4096 * 4096;
  if (padded > m.super.bytes_used) {
    std::vector<char> zeros(padded - m.super.bytes_used, 0);
    check(m.file.p->write_at(m.file.p, m.super.bytes_used, zeros.data(), zeros.size()), "padding");
  }
  check(sqfs_super_write(&m.super, m.file.p), "super block");

  SquashfsStats stats;
  stats.bytes_written = padded;
  stats.inodes = inode_count;
  stats.data_bytes_in = m.data_in;
  // Close the file now so the caller can sync and rename it.
  m.close_all();
  if (m.block_cache) {
    stats.cached_blocks = m.block_cache->hits();
    stats.compressed_blocks = m.block_cache->misses();
    m.block_cache->commit();
  }
  return stats;
}

}  // namespace nemokit::oci
