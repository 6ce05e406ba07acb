#pragma once
// The build context: .dockerignore rules, COPY/ADD source wildcards, and the
// content digest of what a COPY takes (its layer cache key).
#include <filesystem>
#include <string>
#include <vector>

#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/dockerfile/path_pattern.hpp"

namespace nemokit::dockerfile {

class IgnoreRules {
 public:
  // Reads <context>/.dockerignore when present; errors name its line.
  static IgnoreRules load(const std::filesystem::path& context);
  static IgnoreRules parse(const std::string& text, const std::string& file);

  // `rel` is a cleaned path relative to the context ("a/b.txt"). A path is
  // excluded when the last pattern matching it or one of its parents is not
  // an exception ("!pattern").
  bool excluded(const std::string& rel) const;
  // A folder that is excluded may still hold exceptions: walk into it then.
  bool has_exceptions() const { return has_exceptions_; }

 private:
  struct Rule {
    PathPattern pattern;
    bool exception = false;
  };
  std::vector<Rule> rules_;
  bool has_exceptions_ = false;
};

// Expands one COPY/ADD source inside `root` (wildcards in any component), in
// byte order; each result is a cleaned relative path with symlinks on the way
// followed inside root. A source without wildcards that names nothing throws,
// naming it; a wildcard that matches nothing gives no paths, since Docker
// copies what the other sources of the instruction match (the step fails only
// when all of them match nothing).
std::vector<std::string> expand_source(const std::filesystem::path& root, const std::string& source, const IgnoreRules* ignore,
                                       const Location& where);

// Digest of the files under `rel` (paths, types, modes, link targets and
// contents; never timestamps), skipping ignored paths.
void hash_tree(const std::filesystem::path& root, const std::string& rel, const IgnoreRules* ignore, std::string& out_state);

}  // namespace nemokit::dockerfile
