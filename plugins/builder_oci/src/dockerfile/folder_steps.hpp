#pragma once
// The folders WORKDIR and VOLUME stand for. WORKDIR makes its folder, as
// BuildKit and buildah do, so it is a layer step (a layer when the folder is
// new); a RUN step makes the stage's missing VOLUME folders and keeps none of
// its writes in them, as buildah does. Private to the builder (src/dockerfile).
#include <filesystem>
#include <string>
#include <vector>

#include "stage.hpp"
#include "step_cache.hpp"

namespace nemokit::dockerfile {

// WORKDIR's folder: expanded, relative to the stage's working folder, cleaned ("/a/b").
std::string workdir_path(Stage& s, const Instruction& ins, const Vars& vars, const WordOptions& words);

// In a child with its own mount namespace: the overlay of `lowers` with d.upper, and in it
// `mkdir -p` of each path, the new folders owned by `user` (resolved in the image; empty: root).
// Errors start with `what`.
void make_folders(const StepDirs& d, const std::vector<std::filesystem::path>& lowers, const std::vector<std::string>& paths,
                  const std::string& user, const std::string& what);

// The stage's VOLUME paths (for SandboxSpec::volumes).
std::vector<std::string> volumes_of(Stage& s);

// What a RUN step wrote under the stage's volumes, dropped from its upper folder: buildah's
// RUN (and Docker's classic builder's) works on a copy of each volume, so the image keeps a
// volume as it was. `created`: the volume folders the step made, kept empty.
void drop_volume_changes(Stage& s, const std::filesystem::path& upper, const std::vector<std::string>& created);

}  // namespace nemokit::dockerfile
