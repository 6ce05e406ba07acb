#pragma once
// The build of one Dockerfile: its stages in order, each instruction applied to the stage
// (build_driver.cpp: sequencing, FROM, ARG, WORKDIR, the layer step and the output;
// run_instruction.cpp: RUN; copy_instruction.cpp: COPY and ADD; config_instructions.cpp: the
// instructions that only edit the image config). Private to the builder (src/dockerfile).
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "nemokit/dockerfile/builder.hpp"
#include "nemokit/dockerfile/context.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/layer_store.hpp"
#include "nemokit/dockerfile/oci_output.hpp"
#include "nemokit/dockerfile/words.hpp"
#include "run_mounts.hpp"
#include "stage.hpp"
#include "step_cache.hpp"

namespace nemokit::dockerfile {

class BuildDriver {
 public:
  explicit BuildDriver(const BuildRequest& r);
  BuildOutcome run();

 private:
  WordOptions words() const { return WordOptions{df_.escape, true}; }
  std::string stage_name(const Instruction& from);
  std::vector<std::pair<std::string, std::string>> arg_pairs(const Instruction& ins, const Vars& vars);
  void header(const std::string& stage, size_t k, const Instruction& ins, const std::string& note = "");
  std::string stage_label(const Stage& s) const { return s.name.empty() ? "stage-" + std::to_string(stage_index_) : s.name; }
  void run_onbuild_triggers(Stage& s, const Instruction& from);
  Stage start_stage(const Instruction& from, const std::string& name, size_t index);
  // The stage's layer folders, top first, each once.
  std::vector<std::filesystem::path> lowers(const Stage& s) const;
  void add_layer(Stage& s, const std::optional<LayerRef>& layer, const std::string& created_by, const std::string& created);
  // Runs a file-changing step, or takes its result from the layer cache.
  void layer_step(Stage& s, const std::string& key_text, const std::string& created_by,
                  const std::function<void(StepDirs&)>& work);
  // `trigger`: the instruction is an ONBUILD trigger of the base, shown under the FROM step.
  void instruction(Stage& s, const Instruction& ins, const std::string& trigger = "");
  void workdir_step(Stage& s, const Instruction& ins, const Vars& vars);
  // The tree a --from= names: an earlier stage by name or index, else an image.
  MountSourceTree tree_of(const std::string& from, const Location& where);
  void run_step(Stage& s, const Instruction& ins);
  void copy_step(Stage& s, const Instruction& ins);
  BuildOutcome finish(Stage& s);
  void write_squashfs(const LayoutResult& layout);

  const BuildRequest& req_;
  Dockerfile df_;
  LayerStore store_;
  StepCache cache_{store_};
  IgnoreRules ignore_;
  std::map<std::string, std::string> build_args_;
  std::set<std::string> used_args_;
  Vars global_;
  std::vector<Stage> stages_;
  std::string step_label_;
  size_t stage_total_ = 0, stage_index_ = 0, stage_step_ = 0;
  BuildOutcome out_;
};

}  // namespace nemokit::dockerfile
