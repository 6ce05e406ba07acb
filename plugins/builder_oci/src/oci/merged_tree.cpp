#include "nemokit/oci/merged_tree.hpp"

#include <sqfs/predef.h>

#include "nemokit/oci/error.hpp"

namespace nemokit::oci {

FileBody::~FileBody() {
  if (inode) sqfs_free(inode);
}

std::vector<std::string> split_entry_path(const std::string& path, const std::string& where) {
  if (!path.empty() && path[0] == '/') throw Error(where + ": entry '" + path + "' has an absolute path");
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") throw Error(where + ": entry '" + path + "' climbs out with '..'");
    parts.push_back(std::move(part));
  }
  return parts;
}

namespace {

std::string join(const std::vector<std::string>& parts, size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i) {
    if (i) s += '/';
    s += parts[i];
  }
  return s;
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

MergedTree::MergedTree() : root_(std::make_unique<Node>()) {
  root_->type = NodeType::Directory;
  root_->implicit = true;
  root_->depth = INT_MAX;
}

Node* MergedTree::make_child(Node& dir, const std::string& name, const EntrySpec& e, int depth) {
  auto node = std::make_unique<Node>();
  node->name = name;
  node->type = e.type;
  node->depth = depth;
  node->meta = e.meta;
  node->symlink_target = e.symlink_target;
  node->dev_major = e.dev_major;
  node->dev_minor = e.dev_minor;
  Node* raw = node.get();
  dir.children[name] = std::move(node);
  return raw;
}

Node* MergedTree::walk_parents(const std::vector<std::string>& parts, int depth, const std::string& where,
                               const std::string& path) {
  Node* node = root_.get();
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const std::string& comp = parts[i];
    auto it = node->children.find(comp);
    if (it == node->children.end()) {
      if (node->opaque_depth < depth) return nullptr;
      EntrySpec implicit_dir;
      implicit_dir.type = NodeType::Directory;
      Node* created = make_child(*node, comp, implicit_dir, depth);
      created->implicit = true;
      node = created;
      continue;
    }
    Node* child = it->second.get();
    if (child->type == NodeType::Directory) {
      node = child;
      continue;
    }
    if (child->depth < depth) return nullptr;  // an upper layer put a non-directory here
    if (child->type == NodeType::Whiteout) {
      // Removed and recreated in the same layer: still hides the lower one.
      child->type = NodeType::Directory;
      child->implicit = true;
      child->opaque_depth = depth;
      node = child;
      continue;
    }
    if (child->type == NodeType::Symlink)
      throw Error(where + ": entry '" + path + "' goes through the symlink '" + join(parts, i + 1) +
                  "' planted by an earlier entry");
    throw Error(where + ": entry '" + path + "': '" + join(parts, i + 1) + "' is not a directory");
  }
  return node;
}

Node* MergedTree::place(const EntrySpec& e, int depth, const std::string& where) {
  if (depth != current_depth_) {
    if (depth < current_depth_) throw Error(where + ": layers must be applied top first");
    current_depth_ = depth;
    layer_files_.clear();
  }
  auto parts = split_entry_path(e.path, where);
  if (parts.empty()) {
    if (e.type != NodeType::Directory) throw Error(where + ": the root entry '" + e.path + "' is not a directory");
    if (root_->implicit) {
      root_->meta = e.meta;
      root_->implicit = false;
    }
    return root_.get();
  }
  for (size_t i = 0; i + 1 < parts.size(); ++i)
    if (starts_with(parts[i], ".wh."))
      throw Error(where + ": entry '" + e.path + "' uses the whiteout name '" + parts[i] + "' as a folder");
  const std::string& name = parts.back();

  if (starts_with(name, ".wh.")) {
    if (e.type == NodeType::Directory) throw Error(where + ": whiteout '" + e.path + "' is a directory");
    Node* dir = walk_parents(parts, depth, where, e.path);
    if (!dir) return nullptr;
    if (name == ".wh..wh..opq") {
      dir->opaque_depth = std::min(dir->opaque_depth, depth);
      return nullptr;
    }
    if (starts_with(name, ".wh..wh.")) throw Error(where + ": unsupported special whiteout '" + e.path + "'");
    std::string target = name.substr(4);
    if (target.empty()) throw Error(where + ": bare whiteout '" + e.path + "' names nothing");
    if (target == "." || target == "..") throw Error(where + ": whiteout '" + e.path + "' names '" + target + "'");
    if (dir->children.count(target) || dir->opaque_depth < depth) return nullptr;
    EntrySpec w;
    w.type = NodeType::Whiteout;
    make_child(*dir, target, w, depth);
    return nullptr;
  }

  Node* dir = walk_parents(parts, depth, where, e.path);
  std::string key = join(parts, parts.size());
  auto remember = [&](Node* n) {
    if (n && e.type == NodeType::Regular)
      layer_files_[key] = {n->body, n->meta};
    else if (!n && e.type == NodeType::Regular && e.hardlink_target.empty())
      layer_files_[key] = {nullptr, e.meta};
    return n;
  };
  if (!dir) return remember(nullptr);

  Node* placed = nullptr;
  auto it = dir->children.find(name);
  if (it == dir->children.end()) {
    if (dir->opaque_depth < depth) return remember(nullptr);
    placed = make_child(*dir, name, e, depth);
  } else {
    Node* existing = it->second.get();
    if (existing->depth < depth) {
      if (existing->type == NodeType::Directory && existing->implicit) {
        if (e.type == NodeType::Directory) {
          existing->meta = e.meta;
          existing->implicit = false;
          return existing;
        }
        if (e.type == NodeType::Symlink)
          throw Error(where + ": symlink '" + e.path + "' would redirect entries that a layer above places below it");
      }
      if (existing->type == NodeType::Directory && e.type == NodeType::Directory) return existing;
      return remember(nullptr);
    }
    // The same layer names the path again: the later entry wins, as when extracting.
    if (existing->type == NodeType::Directory && e.type == NodeType::Directory) {
      existing->meta = e.meta;
      existing->implicit = false;
      return existing;
    }
    if (existing->type == NodeType::Directory && !existing->children.empty())
      throw Error(where + ": entry '" + e.path + "' replaces a non-empty directory of the same layer");
    placed = make_child(*dir, name, e, depth);
  }

  if (e.type == NodeType::Regular && !e.hardlink_target.empty()) {
    auto target_parts = split_entry_path(e.hardlink_target, where + ": hard link '" + e.path + "'");
    std::string target_key = join(target_parts, target_parts.size());
    auto lf = layer_files_.find(target_key);
    if (lf != layer_files_.end()) {
      if (!lf->second.first)
        throw Error(where + ": hard link '" + e.path + "' points to '" + e.hardlink_target + "', which a layer above hides");
      placed->body = lf->second.first;
      placed->meta = lf->second.second;
    } else {
      if (target_parts.empty()) throw Error(where + ": hard link '" + e.path + "' points to the root folder");
      placed->pending_link = target_key;
      placed->meta = e.meta;
    }
    layer_files_[key] = {placed->body, placed->meta};
    return placed;
  }
  if (e.type == NodeType::Regular) placed->body = std::make_shared<FileBody>();
  return remember(placed);
}

Node* MergedTree::add_to_result(const EntrySpec& e, const std::string& where) {
  auto parts = split_entry_path(e.path, where);
  Node* node = root_.get();
  std::string prefix;
  size_t parents = e.type == NodeType::Directory ? parts.size() : parts.size() - 1;
  if (e.type != NodeType::Directory && parts.empty()) throw Error(where + ": no file name in '" + e.path + "'");
  for (size_t i = 0; i < parents; ++i) {
    prefix += (i ? "/" : "") + parts[i];
    auto it = node->children.find(parts[i]);
    if (it == node->children.end() || it->second->type == NodeType::Whiteout) {
      EntrySpec d;
      d.type = NodeType::Directory;
      d.meta = e.meta;
      d.meta.mode = 0755;
      d.meta.xattrs.clear();
      node = make_child(*node, parts[i], d, 0);
      continue;
    }
    Node* child = it->second.get();
    if (child->type == NodeType::Symlink) child = const_cast<Node*>(resolve(prefix));
    if (!child || child->type != NodeType::Directory) throw Error(where + ": '/" + prefix + "' is not a folder in the image");
    node = child;
  }
  if (e.type == NodeType::Directory) return node;
  Node* placed = make_child(*node, parts.back(), e, 0);
  if (e.type == NodeType::Regular) placed->body = std::make_shared<FileBody>();
  return placed;
}

const Node* MergedTree::lookup_exact(const std::vector<std::string>& parts) const {
  const Node* node = root_.get();
  for (auto& p : parts) {
    if (node->type != NodeType::Directory) return nullptr;
    auto it = node->children.find(p);
    if (it == node->children.end()) return nullptr;
    node = it->second.get();
  }
  return node;
}

void MergedTree::resolve_hard_links() {
  // Gather links first: resolving may follow a chain of links.
  std::vector<std::pair<Node*, std::string>> pending;
  std::vector<std::pair<Node*, std::string>> stack{{root_.get(), ""}};
  while (!stack.empty()) {
    auto [node, path] = stack.back();
    stack.pop_back();
    for (auto& [name, child] : node->children) {
      std::string p = path.empty() ? name : path + "/" + name;
      if (!child->pending_link.empty()) pending.push_back({child.get(), p});
      if (child->type == NodeType::Directory) stack.push_back({child.get(), p});
    }
  }
  for (size_t round = 0; round < pending.size() + 1; ++round) {
    bool progress = false, left = false;
    for (auto& [node, path] : pending) {
      if (node->pending_link.empty()) continue;
      const Node* target = lookup_exact(split_entry_path(node->pending_link, "hard link"));
      if (!target || target->type == NodeType::Directory || target->type == NodeType::Whiteout || target->depth < node->depth)
        throw Error("hard link '" + path + "' points to '" + node->pending_link +
                    "', which is missing from its layer and the layers below");
      if (target->type != NodeType::Regular) {
        // tar records hard links to symlinks and device nodes too; an
        // identical copy is what a reader can tell apart least.
        node->type = target->type;
        node->symlink_target = target->symlink_target;
        node->dev_major = target->dev_major;
        node->dev_minor = target->dev_minor;
        node->meta = target->meta;
        node->body.reset();
        node->pending_link.clear();
        progress = true;
        continue;
      }
      if (!target->body) {
        left = true;
        continue;
      }
      node->body = target->body;
      node->meta = target->meta;
      node->pending_link.clear();
      progress = true;
    }
    if (!left) return;
    if (!progress) break;
  }
  throw Error("hard links form a cycle");
}

const Node* MergedTree::resolve(const std::string& path) const {
  std::vector<std::string> todo = split_entry_path(path, "lookup");
  std::vector<const Node*> stack{root_.get()};
  int hops = 0;
  size_t i = 0;
  while (i < todo.size()) {
    const Node* dir = stack.back();
    if (dir->type != NodeType::Directory) return nullptr;
    auto it = dir->children.find(todo[i]);
    if (it == dir->children.end()) return nullptr;
    const Node* n = it->second.get();
    if (n->type == NodeType::Symlink) {
      if (++hops > 40) return nullptr;
      std::vector<std::string> rest(todo.begin() + long(i) + 1, todo.end());
      std::string t = n->symlink_target;
      if (!t.empty() && t[0] == '/') stack.resize(1);
      std::vector<std::string> next;
      size_t k = 0;
      while (k <= t.size()) {
        size_t j = t.find('/', k);
        if (j == std::string::npos) j = t.size();
        std::string part = t.substr(k, j - k);
        k = j + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") {
          if (stack.size() > 1) stack.pop_back();
          continue;
        }
        next.push_back(part);
      }
      // Resolve the target's parts relative to the current folder.
      for (size_t m = 0; m < next.size(); ++m) {
        const Node* d = stack.back();
        if (d->type != NodeType::Directory) return nullptr;
        auto jt = d->children.find(next[m]);
        if (jt == d->children.end()) return nullptr;
        if (jt->second->type == NodeType::Symlink) {
          // Hand the remainder back to the main loop.
          std::vector<std::string> remain(next.begin() + long(m), next.end());
          remain.insert(remain.end(), rest.begin(), rest.end());
          rest = std::move(remain);
          next.clear();
          break;
        }
        stack.push_back(jt->second.get());
      }
      todo = std::move(rest);
      i = 0;
      continue;
    }
    stack.push_back(n);
    ++i;
  }
  const Node* result = stack.back();
  return result->type == NodeType::Whiteout ? nullptr : result;
}

}  // namespace nemokit::oci
