#pragma once
// One Dockerfile stage while it is built: its image config, its layers, the
// cache chain its steps are keyed by, and the helpers every instruction uses.
// Private to the builder (src/dockerfile).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/layer_store.hpp"
#include "nemokit/dockerfile/words.hpp"
#include "nemokit/oci/platform.hpp"

namespace nemokit::dockerfile {

struct Stage {
  std::string name;              // lower case; empty when the stage has no AS NAME
  nlohmann::json image;          // the OCI image config being built
  std::vector<LayerRef> layers;  // bottom first
  std::string chain;             // cache key of the last step (the base image's chain at first)
  Vars args;                     // ARGs declared in this stage
  std::vector<std::string> shell{"/bin/sh", "-c"};
  bool cmd_set = false;    // CMD given in this stage (a later ENTRYPOINT keeps it)
  oci::Platform platform;  // the build's target, or FROM --platform='s
};

[[noreturn]] void fail_at(const Location& where, const std::string& message);

// Stage names and keywords compare without case, as Docker does.
std::string lower_case(std::string s);

nlohmann::json& config_of(Stage& s);
std::vector<std::string> env_list(Stage& s);
void set_env(Stage& s, const std::string& key, const std::string& value);
// Variables an instruction sees: the stage's ARGs, overridden by its ENV.
Vars vars_of(Stage& s);
std::string workdir_of(Stage& s);
// The stage's SHELL with `text` as its last argument.
std::vector<std::string> shell_command(const Stage& s, const std::string& text);

// Appends a history entry. Config-only steps (empty `created`) take the time of
// the entry before them, so that the config (and the image digest) only
// changes when a layer does.
void add_history(Stage& s, const std::string& created_by, bool empty_layer, std::string created = "");

}  // namespace nemokit::dockerfile
