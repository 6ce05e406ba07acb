#include "nemokit/oci/convert.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <thread>

#include "nemokit/oci/enroot_config.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/layer_reader.hpp"
#include "nemokit/oci/merged_tree.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/progress.hpp"

namespace nemokit::oci {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

// Turns SIGINT/SIGTERM into a flag for the duration of a conversion.
class SignalGuard {
 public:
  explicit SignalGuard(bool enabled) : enabled_(enabled) {
    g_stop.store(false);
    if (!enabled_) return;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalGuard() {
    if (!enabled_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  bool enabled_;
  struct sigaction old_int_ {
  }, old_term_{};
};

bool needs_data(const Node* n) {
  return n && n->type == NodeType::Regular && n->body && !n->body->inode && n->pending_link.empty();
}

std::string short_digest(const Layer& l) {
  std::string d = l.digest ? *l.digest : l.diff_id;
  return d.size() > 19 ? d.substr(0, 19) : d;
}

}  // namespace

ConvertResult convert_image(const Image& image, const std::filesystem::path& dest, const ConvertOptions& options) {
  validate(options.squashfs);
  SignalGuard signals(options.handle_signals);
  rt::AtomicOutput output(dest);
  ConvertResult result;
  result.layers = image.layers.size();
  // The layers' stored (compressed) bytes read, of all of them when every size is known.
  int64_t stored_total = 0;
  for (const Layer& l : image.layers) stored_total = l.size && stored_total >= 0 ? stored_total + int64_t(*l.size) : -1;
  std::optional<rt::Progress> progress;
  if (options.progress) progress.emplace("read", std::max<int64_t>(0, stored_total), 0, rt::Progress::Unit::bytes);
  MergedTree tree;
  SquashfsWriter writer(output.temp_path(), options.squashfs);

  uint64_t read_before = 0;
  const size_t count = image.layers.size();
  // Layers below the current one decompress ahead on their own threads.
  const size_t ahead = std::min(4u, std::max(2u, std::thread::hardware_concurrency()));
  std::deque<std::unique_ptr<LayerReader>> readers;
  size_t opened = 0;
  for (size_t k = 0; k < count; ++k) {
    while (opened < count && readers.size() < ahead) {
      size_t i = count - 1 - opened;  // top layer first
      const Layer& layer = image.layers[i];
      std::string label =
          image.source + ": layer " + std::to_string(i + 1) + "/" + std::to_string(count) + " (" + short_digest(layer) + ")";
      readers.push_back(std::make_unique<LayerReader>(layer, label));
      ++opened;
    }
    LayerReader& reader = *readers.front();
    const std::string which = "layer " + std::to_string(k + 1) + "/" + std::to_string(count);
    if (progress) progress->update(int64_t(read_before), which);
    reader.should_stop = [] { return g_stop.load(); };
    reader.on_progress = [&](uint64_t n) {
      if (progress) progress->update(int64_t(read_before + n), which);
    };
    const std::string& label = reader.label();
    int depth = int(k) + 1;
    while (archive_entry* e = reader.next()) {
      Node* n = tree.place(entry_spec(e, label), depth, label);
      if (!needs_data(n)) continue;
      writer.begin_file(n->body);
      reader.read_data([&](const void* p, size_t size) { writer.append(p, size); });
      writer.end_file();
      if (g_stop.load()) throw Interrupted();
    }
    read_before += reader.stored_bytes_read();
    readers.pop_front();
  }
  if (g_stop.load()) throw Interrupted();
  result.stored_bytes_read = read_before;

  tree.resolve_hard_links();

  // What enroot writes into the finished root filesystem.
  if (options.write_enroot_files) {
    const std::string where = image.source + ": image config";
    EnrootFiles files = enroot_files(image.config);
    for (auto& f : files.files) {
      EntrySpec s;
      s.path = f.path;
      s.type = NodeType::Regular;
      s.meta.mode = f.mode;
      s.meta.mtime = options.squashfs.fixed_mtime.value_or(0);
      Node* n = tree.add_to_result(s, where);
      writer.begin_file(n->body);
      writer.append(f.content.data(), f.content.size());
      writer.end_file();
    }
    EntrySpec wd;
    wd.type = NodeType::Directory;
    wd.path = files.workdir;
    wd.path.erase(0, wd.path.find_first_not_of('/'));
    tree.add_to_result(wd, where + ": WorkingDir");
  }
  const Node* sh = tree.resolve("bin/sh");
  if (!sh || sh->type != NodeType::Regular)
    result.warnings.push_back(image.source + ": the image has no /bin/sh; pyxis needs it to start a container");

  SquashfsStats stats = writer.finish(tree, result.warnings);
  if (g_stop.load()) throw Interrupted();
  output.commit();
  if (progress) progress->finish();
  result.output_bytes = stats.bytes_written;
  result.inodes = stats.inodes;
  result.file_bytes = stats.data_bytes_in;
  result.cached_blocks = stats.cached_blocks;
  result.compressed_blocks = stats.compressed_blocks;
  return result;
}

ConvertResult convert_image(const std::string& source_spec, const std::filesystem::path& dest, const ConvertOptions& options) {
  Image image = open_image(source_spec);
  return convert_image(image, dest, options);
}

}  // namespace nemokit::oci
