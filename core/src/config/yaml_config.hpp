// The recipes write their configs in YAML; nemokit's are TOML. A YAML config is turned into TOML
// text that puts every key on the line it had in the YAML file, so that the TOML parser, the
// merging of `defaults` and every later error ("file.yaml:12: ...") work as for a TOML file.
#pragma once

#include <string>

namespace nemokit {

// `yaml`: a YAML mapping (block or flow style). Scalars take the YAML 1.2 core schema's types
// (true/false, integers, floats, .inf/.nan; quoted ones stay strings); sequences become arrays
// and mappings nested in them inline tables. Throws UserError naming `origin`, the line and the
// cause for invalid YAML, a document that is not a mapping, null values (TOML has none),
// anchors merged with `<<`, and non-scalar keys.
std::string yaml_to_toml_text(const std::string& yaml, const std::string& origin);

bool is_yaml_name(const std::string& name);  // ends in .yaml or .yml

}  // namespace nemokit
