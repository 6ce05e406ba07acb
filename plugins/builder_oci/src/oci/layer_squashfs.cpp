#include "nemokit/oci/layer_squashfs.hpp"

#include <archive_entry.h>

#include <algorithm>
#include <vector>

#include "nemokit/oci/error.hpp"
#include "nemokit/oci/layer_reader.hpp"
#include "nemokit/oci/merged_tree.hpp"
#include "nemokit/runtime/atomic_file.hpp"

namespace nemokit::oci {
namespace {

bool is_overlay_xattr(const std::string& name) {
  return name.rfind("trusted.overlay.", 0) == 0 || name.rfind("user.overlay.", 0) == 0;
}

}  // namespace

SquashfsStats write_layer_squashfs(const Layer& layer, const std::string& label, const std::filesystem::path& dest,
                                   const SquashfsOptions& options, const std::string& opaque_xattr,
                                   std::vector<std::string>& warnings, BlobCopy* blob_copy) {
  validate(options);
  rt::AtomicOutput output(dest);
  MergedTree tree;
  SquashfsWriter writer(output.temp_path(), options);
  LayerReader reader(layer, label, blob_copy ? blob_copy->copy : LayerReader::StoredSink{});
  std::vector<std::string> opaque;  // folders (paths in the layer) marked opaque
  while (archive_entry* e = reader.next()) {
    EntrySpec spec = entry_spec(e, label);
    // Paths as the merged tree will store them; unsafe ones (absolute, "..") throw here.
    std::vector<std::string> parts = split_entry_path(spec.path, label);
    const std::string name = parts.empty() ? std::string() : parts.back();
    std::string dir;
    for (size_t i = 0; i + 1 < parts.size(); ++i) dir += (i ? "/" : "") + parts[i];
    if (name == ".wh..wh..opq") {
      opaque.push_back(dir);
      continue;
    }
    if (name.rfind(".wh.", 0) == 0) {
      std::string hidden = name.substr(4);
      if (hidden.empty() || hidden == "." || hidden == ".." || hidden.rfind(".wh.", 0) == 0)
        throw Error(label + ": invalid whiteout '" + spec.path + "'");
      EntrySpec w;
      w.path = dir.empty() ? hidden : dir + "/" + hidden;
      w.type = NodeType::CharDevice;
      w.meta.mode = 0;
      w.meta.mtime = spec.meta.mtime;
      tree.place(w, 1, label);
      continue;
    }
    std::erase_if(spec.meta.xattrs, [](const auto& x) { return is_overlay_xattr(x.first); });
    Node* n = tree.place(spec, 1, label);
    if (!n || n->type != NodeType::Regular || !n->body || n->body->inode || !n->pending_link.empty()) continue;
    writer.begin_file(n->body);
    reader.read_data([&](const void* p, size_t size) { writer.append(p, size); });
    writer.end_file();
  }
  if (blob_copy) blob_copy->digest = reader.stored_digest();
  tree.resolve_hard_links();
  for (const std::string& d : opaque) {
    EntrySpec folder;
    folder.path = d;
    folder.type = NodeType::Directory;
    Node* n = d.empty() ? &tree.root() : tree.add_to_result(folder, label + ": opaque folder '" + d + "'");
    n->meta.xattrs.emplace_back(opaque_xattr, "y");
  }
  SquashfsStats stats = writer.finish(tree, warnings);
  output.commit();
  return stats;
}

}  // namespace nemokit::oci
