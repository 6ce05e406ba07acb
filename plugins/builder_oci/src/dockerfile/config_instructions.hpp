#pragma once
// The Dockerfile instructions that only edit the image config. Private to the
// builder (src/dockerfile).
#include "stage.hpp"

namespace nemokit::dockerfile {

// Applies ENV, LABEL, MAINTAINER, USER, SHELL, CMD, ENTRYPOINT, EXPOSE, VOLUME,
// STOPSIGNAL, HEALTHCHECK or ONBUILD to the stage's config and history,
// with `vars` for expansion. Returns false for any other keyword (ARG and the
// layer steps are the driver's). Throws BuildError naming the line.
bool apply_config_instruction(Stage& s, const Instruction& ins, const Vars& vars, const WordOptions& words);

}  // namespace nemokit::dockerfile
