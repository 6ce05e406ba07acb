#pragma once
// Artifact references in a resolved config: a whole string value "NAME:latest" or "NAME:vN" is
// the artifact's path; "${art:REF,FIELD}" inside a string is one field of its metadata (dotted:
// "splits.train.tokens"; FIELD defaults to path; REF is NAME, NAME:latest or NAME:vN). A
// placeholder that is the whole value and names a number or boolean becomes that value.

#include "nemokit/runtime/artifacts.hpp"

#include <toml++/toml.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace nemokit {

struct ArtifactUse {
  std::string key;       // "model.init_from"
  std::string written;   // the value as the config wrote it
  std::string ref;       // "NAME:vN" it resolved to; "" when deferred
  std::string value;     // what the key now holds (deferred: as written)
};

// Which versions a stage of `nemokit pipe` reads of the names the stages before it publish.
struct PipeInputs {
  // When the pipe is planned: these names are not published yet (an older version in the store
  // is not what the pipe makes), so NAME:latest of one of them stays as written.
  std::set<std::string> deferred;
  // When the stage starts: NAME -> the job folder of the stage that publishes it; NAME:latest is
  // the newest version that job published, whatever other jobs published since.
  std::map<std::string, std::string> published_by;
};

// Resolves every reference in `config` against `store` (NAME:vN always as written). Throws
// UserError naming the key, the reference and the artifacts the store holds.
std::vector<ArtifactUse> resolve_artifact_refs(toml::table& config, const rt::artifacts::Store& store,
                                               const PipeInputs& pipe = {});

// The [artifact] table every stage config may have: `name`, the name the stage's model is
// published under. Throws UserError for another key or a name the store cannot hold.
void check_artifact_table(const toml::table& config);

}  // namespace nemokit
