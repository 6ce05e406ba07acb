// The build: Dockerfile stages interpreted in order. Instructions that change
// files (RUN: run_instruction.cpp, COPY and ADD: copy_instruction.cpp, WORKDIR
// here) run in an overlay of the stage's layers with a fresh upper folder that
// becomes the next layer; the others edit the image config
// (config_instructions.cpp). Every layer step is keyed by its parent and what
// it does (step_cache.cpp), so an unchanged rebuild takes every layer from the
// cache.
#include "build_driver.hpp"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "config_instructions.hpp"
#include "folder_steps.hpp"
#include "nemokit/dockerfile/base_image.hpp"
#include "nemokit/dockerfile/child.hpp"
#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/platform.hpp"
#include "nemokit/runtime/atomic_file.hpp"

namespace nemokit::dockerfile {
namespace fs = std::filesystem;
using nlohmann::json;

BuildDriver::BuildDriver(const BuildRequest& r)
    : req_(r),
      df_(parse_dockerfile(r.dockerfile_text, r.dockerfile_name)),
      store_(r.build_cache_dir),
      ignore_(IgnoreRules::load(r.context)) {
  // BuildKit's automatic platform ARGs: global, so FROM lines see them and a stage sees one
  // after declaring it (ARG TARGETARCH).
  const oci::Platform build = oci::host_platform();
  for (auto [prefix, p] : {std::pair{"BUILD", &build}, std::pair{"TARGET", &r.platform}}) {
    global_[std::string(prefix) + "PLATFORM"] = p->str();
    global_[std::string(prefix) + "OS"] = p->os;
    global_[std::string(prefix) + "ARCH"] = p->architecture;
    global_[std::string(prefix) + "VARIANT"] = p->variant;
  }
  for (auto& a : r.build_args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) {
      if (const char* v = std::getenv(a.c_str())) build_args_[a] = v;
    } else {
      build_args_[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
}

BuildOutcome BuildDriver::run() {
  // Stages and the ARGs before the first FROM.
  std::vector<std::vector<const Instruction*>> bodies;
  std::vector<const Instruction*> froms;
  for (auto& ins : df_.instructions) {
    if (ins.keyword == "FROM") {
      froms.push_back(&ins);
      bodies.emplace_back();
    } else if (froms.empty()) {
      if (ins.keyword != "ARG") fail_at(ins.where, ins.keyword + " before the first FROM (only ARG may come first)");
      for (auto& [k, v] : arg_pairs(ins, global_)) global_[k] = v;
    } else {
      bodies.back().push_back(&ins);
    }
  }
  if (froms.empty()) throw BuildError(df_.path + ": no FROM instruction");
  std::vector<std::string> names;
  for (auto* f : froms) names.push_back(stage_name(*f));
  size_t target = froms.size() - 1;
  if (req_.target) {
    auto it = std::find(names.begin(), names.end(), lower_case(*req_.target));
    if (it == names.end()) throw BuildError("--target " + *req_.target + ": no stage of that name in " + df_.path);
    target = size_t(it - names.begin());
  }
  for (size_t i = 0; i <= target; ++i) {
    stage_total_ = 1 + bodies[i].size();
    Stage s = start_stage(*froms[i], names[i], i);
    run_onbuild_triggers(s, *froms[i]);
    for (auto* ins : bodies[i]) instruction(s, *ins);
    stages_.push_back(std::move(s));
  }
  for (auto& [k, _] : build_args_)
    if (!used_args_.count(k)) std::cerr << "warning: build argument " << k << " was not used by any ARG\n";
  return finish(stages_[target]);
}

std::string BuildDriver::stage_name(const Instruction& from) {
  auto w = split_words(from.args, global_, words(), from.args_where);
  if (w.size() == 3 && lower_case(w[1]) == "as") return lower_case(w[2]);
  if (w.size() != 1) fail_at(from.args_where, "FROM takes IMAGE [AS NAME]");
  return "";
}

std::vector<std::pair<std::string, std::string>> BuildDriver::arg_pairs(const Instruction& ins, const Vars& vars) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& w : split_words(ins.args, vars, words(), ins.args_where)) {
    size_t eq = w.find('=');
    std::string name = w.substr(0, eq);
    if (name.empty()) fail_at(ins.args_where, "ARG needs a name");
    std::optional<std::string> value;
    if (eq != std::string::npos) value = w.substr(eq + 1);
    if (auto b = build_args_.find(name); b != build_args_.end()) {
      value = b->second;
      used_args_.insert(name);
    }
    if (!value) {
      // "ARG NAME" inside a stage takes the value of a global ARG NAME; declared again in the
      // global scope (ARG TARGETARCH), a name keeps the value it has.
      if (auto g = global_.find(name); g != global_.end()) value = g->second;
    }
    out.emplace_back(name, value.value_or(""));
  }
  return out;
}

void BuildDriver::header(const std::string& stage, size_t k, const Instruction& ins, const std::string& note) {
  step_label_ = "[" + stage + " " + std::to_string(k) + "/" + std::to_string(stage_total_) + "]";
  std::cerr << step_label_ << " " << ins.original << note << "\n";
}

// The ONBUILD triggers of the stage's base (an image or an earlier stage) run first, as
// part of its FROM step, and are not passed on to this stage's image.
void BuildDriver::run_onbuild_triggers(Stage& s, const Instruction& from) {
  json& config = config_of(s);
  if (!config.contains("OnBuild")) return;
  json triggers = config["OnBuild"];
  config.erase("OnBuild");
  if (!triggers.is_array()) return;
  std::string base = split_words(from.args, global_, words(), from.args_where)[0];
  for (auto& t : triggers) {
    std::string text = t.is_string() ? t.get<std::string>() : t.dump();
    auto failed = [&](const std::string& why) {
      fail_at(from.where, "FROM " + base + ": its ONBUILD trigger '" + text + "': " + why);
    };
    if (!t.is_string()) failed("not a string");
    Dockerfile trigger;
    try {
      trigger = parse_dockerfile(text, "ONBUILD");
    } catch (const BuildError& e) {
      failed(e.what());
    }
    if (trigger.instructions.size() != 1) failed("not one instruction");
    try {
      instruction(s, trigger.instructions[0], " (ONBUILD of " + base + ")");
    } catch (const BuildError& e) {
      failed(e.what());
    }
  }
}

Stage BuildDriver::start_stage(const Instruction& from, const std::string& name, size_t index) {
  auto w = split_words(from.args, global_, words(), from.args_where);
  std::string ref = w[0];
  for (auto& f : from.flags)
    if (f.name != "platform") fail_at(f.where, "FROM does not take --" + f.name);
  header(name.empty() ? "stage-" + std::to_string(index) : name, 1, from);
  Stage s;
  s.name = name;
  s.platform = req_.platform;
  if (auto* p = from.flag("platform")) {
    // Expanded with the global ARGs: FROM --platform=$BUILDPLATFORM is the usual spelling.
    std::string value = process_word(p->value, global_, words(), p->where);
    try {
      s.platform = oci::parse_platform(value);
    } catch (const oci::Error& e) {
      fail_at(p->where, "FROM --platform=" + p->value + ": " + e.what());
    }
  }
  std::string lname = lower_case(ref);
  auto prev = std::find_if(stages_.begin(), stages_.end(), [&](const Stage& p) { return !p.name.empty() && p.name == lname; });
  if (prev != stages_.end()) {
    s.image = prev->image;
    s.layers = prev->layers;
    s.chain = prev->chain;
    s.shell = prev->shell;
    s.platform = prev->platform;  // an earlier stage's programs are of its platform
  } else {
    BaseImage base = load_base_image(ref, store_, req_.build_cache_dir, from.args_where, s.platform);
    s.image = base.config;
    s.layers = base.layers;
    s.chain = base.chain;
  }
  if (!s.image.contains("config") || !s.image["config"].is_object()) s.image["config"] = json::object();
  s.name = name;
  stage_index_ = index;
  stage_step_ = 1;
  return s;
}

// The stage's layer folders, top first. A layer that occurs twice (the same COPY twice)
// is one folder, and overlayfs refuses a lower folder given twice (ELOOP); only its top
// occurrence is kept, which shows the same tree: everything the lower copy sets, the upper
// copy sets again over whatever came between.
std::vector<fs::path> BuildDriver::lowers(const Stage& s) const {
  std::vector<fs::path> out;
  std::set<std::string> seen;
  for (auto it = s.layers.rbegin(); it != s.layers.rend(); ++it)
    if (seen.insert(it->diff_id).second) out.push_back(store_.layer_dir(*it));
  out.push_back(store_.empty_dir());
  return out;
}

void BuildDriver::add_layer(Stage& s, const std::optional<LayerRef>& layer, const std::string& created_by,
                            const std::string& created) {
  if (layer) {
    s.layers.push_back(*layer);
    s.image["rootfs"]["type"] = "layers";
    s.image["rootfs"]["diff_ids"].push_back(layer->diff_id);
  }
  add_history(s, created_by, !layer, created);
}

// Runs a file-changing step, or takes its result from the layer cache.
void BuildDriver::layer_step(Stage& s, const std::string& key_text, const std::string& created_by,
                             const std::function<void(StepDirs&)>& work) {
  std::string key = StepCache::key(s.chain, key_text);
  if (!req_.no_cache)
    if (std::optional<CachedStep> cached = cache_.find(key)) {
      std::cerr << "  cached\n";
      add_layer(s, cached->layer, created_by, cached->created);
      s.chain = key;
      ++out_.steps_cached;
      return;
    }
  StepDirs dirs(store_);
  work(dirs);
  CachedStep done{store_.commit(dirs.upper), now_rfc3339()};
  cache_.remember(key, done);
  add_layer(s, done.layer, created_by, done.created);
  s.chain = key;
  ++out_.steps_run;
}

// `trigger`: the instruction is an ONBUILD trigger of the base, shown under the FROM step.
void BuildDriver::instruction(Stage& s, const Instruction& ins, const std::string& trigger) {
  header(stage_label(s), trigger.empty() ? ++stage_step_ : stage_step_, ins, trigger);
  const std::string& k = ins.keyword;
  if (k != "RUN" && k != "COPY" && k != "ADD" && k != "HEALTHCHECK")
    for (auto& f : ins.flags) fail_at(f.where, k + " does not take --" + f.name);
  Vars vars = vars_of(s);
  if (k == "ARG") {
    for (auto& [name, value] : arg_pairs(ins, vars)) s.args[name] = value;
    return;
  }
  if (k == "WORKDIR") return workdir_step(s, ins, vars);
  if (apply_config_instruction(s, ins, vars, words())) return;
  if (k == "RUN") return run_step(s, ins);
  if (k == "COPY" || k == "ADD") return copy_step(s, ins);
  fail_at(ins.where, k + " is not supported");
}

// WORKDIR's folder is made for the stage's USER, its parents too (BuildKit's mkdir -p as
// the user; buildah's likewise).
void BuildDriver::workdir_step(Stage& s, const Instruction& ins, const Vars& vars) {
  std::string wd = workdir_path(s, ins, vars, words());
  config_of(s)["WorkingDir"] = wd;
  std::string user = config_of(s).value("User", "");
  json key = {{"op", "WORKDIR"}, {"path", wd}, {"user", user}};
  layer_step(s, key.dump(), "WORKDIR " + ins.args,
             [&](StepDirs& d) { make_folders(d, lowers(s), {wd}, user, ins.where.str() + ": WORKDIR"); });
}

// The tree a --from= names (an earlier stage by name or index, else an image): its layer
// folders and its cache chain.
MountSourceTree BuildDriver::tree_of(const std::string& from, const Location& where) {
  std::string lname = lower_case(from);
  const Stage* stage = nullptr;
  for (auto& p : stages_)
    if (!p.name.empty() && p.name == lname) stage = &p;
  if (!stage && !from.empty() && from.find_first_not_of("0123456789") == std::string::npos) {
    size_t i = std::stoul(from);
    if (i >= stages_.size()) fail_at(where, "--from=" + from + ": there is no earlier stage " + from);
    stage = &stages_[i];
  }
  Stage tmp;
  if (stage) {
    tmp.layers = stage->layers;
    tmp.chain = stage->chain;
  } else {
    BaseImage image = load_base_image(from, store_, req_.build_cache_dir, where, req_.platform);
    tmp.layers = image.layers;
    tmp.chain = image.chain;
  }
  return MountSourceTree{lowers(tmp), tmp.chain};
}

BuildOutcome BuildDriver::finish(Stage& s) {
  json& img = s.image;
  img.erase("variant");
  img.update(s.platform.to_json());
  img["rootfs"]["type"] = "layers";
  if (!img["rootfs"].contains("diff_ids")) img["rootfs"]["diff_ids"] = json::array();
  // The image is as old as its newest history entry, so a rebuild from the
  // cache gives the same config and the same digests.
  std::string created;
  for (auto& h : img["history"])
    if (h.contains("created") && h["created"].is_string()) created = std::max(created, h["created"].get<std::string>());
  if (!created.empty()) img["created"] = created;
  BuiltImage built{req_.tag, img, s.layers};
  fs::path layout_dir = req_.build_cache_dir / "oci" / req_.tag;
  LayoutResult layout = write_oci_layout(store_, built, layout_dir);
  out_.layout = layout_dir;
  out_.manifest_digest = layout.manifest_digest;
  if (req_.write_squashfs) write_squashfs(layout);
  if (req_.output) {
    std::string o = *req_.output;
    if (o.rfind("oci-archive:", 0) == 0)
      write_oci_archive(layout_dir, o.substr(12));
    else
      write_docker_archive(layout, built, o.substr(15));
    std::cerr << "wrote " << o << "\n";
  }
  return out_;
}

void BuildDriver::write_squashfs(const LayoutResult& layout) {
  fs::path dest = req_.build_cache_dir / "containers" / (req_.tag + ".sqsh");
  fs::create_directories(dest.parent_path());
  fs::path record = store_.root() / "outputs" / (req_.tag + ".json");
  fs::create_directories(record.parent_path());
  out_.squashfs = dest;
  struct stat st;
  auto stamp = [&](const struct stat& x) {
    return json{{"manifest", layout.manifest_digest},
                {"size", uint64_t(x.st_size)},
                {"mtime_ns", int64_t(x.st_mtim.tv_sec) * 1000000000 + x.st_mtim.tv_nsec}};
  };
  if (!req_.no_cache && stat(dest.c_str(), &st) == 0 && fs::exists(record)) {
    try {
      std::ifstream in(record);
      if (json::parse(in) == stamp(st)) {
        out_.squashfs_reused = true;
        std::cerr << dest.string() << " is up to date\n";
        return;
      }
    } catch (const std::exception&) {}
  }
  oci::ConvertOptions options;
  options.progress = true;  // a live line on a terminal, plain lines in a log
  // Images FROM the same base share its compressed blocks (block_cache.hpp), and so do the
  // base's own layer squashfs files.
  options.squashfs = store_.squashfs_options();
  oci::ConvertResult r;
  try {
    r = oci::convert_image("oci:" + layout.dir.string() + ":" + req_.tag, dest, options);
  } catch (const oci::Error& e) {
    throw BuildError(std::string("writing ") + dest.string() + ": " + e.what());
  }
  for (auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  if (stat(dest.c_str(), &st) == 0) rt::write_file_atomic(record, stamp(st).dump());
  std::cerr << "wrote " << dest.string() << " (" << r.output_bytes << " bytes, " << r.layers << " layers";
  if (r.cached_blocks + r.compressed_blocks > 0)
    std::cerr << ", " << r.cached_blocks << " of " << r.cached_blocks + r.compressed_blocks << " blocks from the block cache";
  std::cerr << ")\n";
}

BuildOutcome run_build(const BuildRequest& request) {
  // An ordinary user's build reaches here as root of a user namespace (the plugin enters it).
  if (geteuid() != 0)
    throw BuildError(
        "building images needs root or a user namespace (mounts and namespaces for RUN steps): run it through "
        "`nemokit build`, which enters one for an ordinary user");
  overlay_driver();  // a bad NEMOKIT_OVERLAY stops the build before any step, cached or not
  squashfs_block_cache_bytes();  // and so does a bad NEMOKIT_SQUASHFS_CACHE_MB
  if (base_layer_form() == BaseLayerForm::folders) return BuildDriver(request).run();
  // Base layers are mounted for the build's steps: in a mount namespace of the build's own, so
  // they go with it however it ends, and nothing outside sees them.
  std::string result = run_in_child_for(
      [&] {
        BuildOutcome o = BuildDriver(request).run();
        return json{{"layout", o.layout.string()},   {"squashfs", o.squashfs.string()},
                    {"manifest", o.manifest_digest}, {"run", o.steps_run},
                    {"cached", o.steps_cached},      {"reused", o.squashfs_reused}}
            .dump();
      },
      "", CLONE_NEWNS);
  json j = json::parse(result);
  BuildOutcome o;
  o.layout = j.at("layout").get<std::string>();
  o.squashfs = j.at("squashfs").get<std::string>();
  o.manifest_digest = j.at("manifest");
  o.steps_run = j.at("run");
  o.steps_cached = j.at("cached");
  o.squashfs_reused = j.at("reused");
  return o;
}

}  // namespace nemokit::dockerfile
