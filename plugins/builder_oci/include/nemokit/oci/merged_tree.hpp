#pragma once
// The flattened root filesystem, built in one pass from the top layer down.
//
// Layers are numbered by depth: 0 is the top-most, larger is lower. An entry of
// a lower layer is placed only where nothing above already decided the path:
// an upper entry, an upper whiteout (.wh.NAME) or an upper opaque marker
// (.wh..wh..opq) hides it. Directories merge; anything else replaces. Whiteouts
// only ever act on lower layers, so the order of entries inside a layer does not
// matter for them, and they never appear in the result.
#include <sys/types.h>

#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

extern "C" {
struct sqfs_inode_generic_t;
}

namespace nemokit::oci {

enum class NodeType { Directory, Regular, Symlink, CharDevice, BlockDevice, Fifo, Socket, Whiteout };

struct Metadata {
  uint32_t mode = 0755;  // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  int64_t mtime = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// The contents of a regular file; hard links share one.
struct FileBody {
  sqfs_inode_generic_t* inode = nullptr;  // created and filled by the squashfs data writer
  ~FileBody();
};

struct Node {
  std::string name;
  NodeType type = NodeType::Directory;
  int depth = 0;               // the layer that placed it
  bool implicit = false;       // a directory only known as a parent of other entries
  int opaque_depth = INT_MAX;  // children from layers deeper than this are hidden
  Metadata meta;
  std::string symlink_target;
  uint32_t dev_major = 0, dev_minor = 0;
  std::shared_ptr<FileBody> body;                         // Regular only
  std::string pending_link;                               // hard link to resolve once all layers are in
  std::map<std::string, std::unique_ptr<Node>> children;  // byte order, as squashfs wants
};

// What one layer entry asks for.
struct EntrySpec {
  std::string path;
  NodeType type = NodeType::Regular;
  Metadata meta;
  std::string symlink_target;
  uint32_t dev_major = 0, dev_minor = 0;
  std::string hardlink_target;  // non-empty: a hard link to this path
};

class MergedTree {
 public:
  MergedTree();

  // Places an entry of layer `depth` (layers must come top first). Returns the
  // node to fill (a Regular node without a body needs its contents written), or
  // nullptr when an upper layer hides the entry or it was a whiteout. `where`
  // prefixes error messages (e.g. "layer 2/3 (sha256:..)").
  Node* place(const EntrySpec& entry, int depth, const std::string& where);

  // After all layers: writes into the finished tree as a program in the
  // container would (symlinked folders are followed inside the image, missing
  // ones created). A Regular entry replaces what is there; a Directory entry
  // only makes sure the folder exists (`mkdir -p`). Returns the node.
  Node* add_to_result(const EntrySpec& entry, const std::string& where);

  // Links hard links whose target lives in a lower layer; call after all layers.
  void resolve_hard_links();

  Node& root() { return *root_; }
  const Node& root() const { return *root_; }

  // Looks a path up, following symlinks inside the tree (for checks like /bin/sh).
  const Node* resolve(const std::string& path) const;

 private:
  Node* walk_parents(const std::vector<std::string>& parts, int depth, const std::string& where, const std::string& path);
  Node* make_child(Node& dir, const std::string& name, const EntrySpec& e, int depth);
  const Node* lookup_exact(const std::vector<std::string>& parts) const;

  std::unique_ptr<Node> root_;
  int current_depth_ = -1;
  // Regular files of the current layer by path, for hard links inside a layer;
  // a null body marks a file hidden by an upper layer.
  std::map<std::string, std::pair<std::shared_ptr<FileBody>, Metadata>> layer_files_;
};

// Splits a layer entry path into components: "./a//b/" -> {a, b}. Throws for
// absolute paths and ".." (naming `where` and the path).
std::vector<std::string> split_entry_path(const std::string& path, const std::string& where);

}  // namespace nemokit::oci
