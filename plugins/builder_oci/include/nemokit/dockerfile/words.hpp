#pragma once
// Docker's word processing for instruction arguments: quotes, the escape
// character, and $VAR / ${VAR} / ${VAR:-default} / ${VAR:+alt} expansion.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nemokit/dockerfile/dockerfile.hpp"

namespace nemokit::dockerfile {

// Variables visible to an instruction (ARG values and ENV).
using Vars = std::map<std::string, std::string>;

struct WordOptions {
  char escape = '\\';
  bool expand = true;
};

// Splits on unquoted whitespace, removes quotes, expands variables (expanded
// text is never split again). `where` locates errors.
std::vector<std::string> split_words(const std::string& text, const Vars& vars, const WordOptions& opt, const Location& where);

// The whole text as one word (WORKDIR, USER, ...): quotes removed, expanded.
std::string process_word(const std::string& text, const Vars& vars, const WordOptions& opt, const Location& where);

// Parses "K=V K2=V2" (or the legacy "K V with spaces" form when `allow_legacy`)
// into ordered pairs, each value processed as a word.
std::vector<std::pair<std::string, std::string>> parse_key_values(const std::string& text, const Vars& vars,
                                                                  const WordOptions& opt, const Location& where,
                                                                  bool allow_legacy);

}  // namespace nemokit::dockerfile
