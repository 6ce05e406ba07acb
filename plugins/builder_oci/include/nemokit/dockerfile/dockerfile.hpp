#pragma once
// A Dockerfile as Docker documents it, parsed into instructions that still
// carry their raw argument text: variables are expanded later, per stage, when
// the values of ARG and ENV are known.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::dockerfile {

// Every error about a user's Dockerfile or build request; the message names
// the file, line and column when there is one.
class BuildError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Location {
  std::string file;
  int line = 0;             // 1-based
  int column = 0;           // 1-based
  std::string str() const;  // "file:line:column"
};

struct Heredoc {
  std::string name;     // the delimiter word
  std::string content;  // the lines between, each ending in '\n'
  bool expand = true;   // false when the delimiter was quoted
  bool strip_tabs = false;
};

struct Flag {
  std::string name;   // without the leading "--"
  std::string value;  // empty for a bare flag
  Location where;
};

struct Instruction {
  std::string keyword;      // upper case: FROM, RUN, ...
  std::string original;     // the logical line as written (history)
  std::vector<Flag> flags;  // leading --name[=value] words
  std::string args;         // the text after the flags
  Location where;           // the keyword
  Location args_where;      // the first character of args
  bool json_form = false;   // args (HEALTHCHECK: what follows CMD) was a JSON array of strings
  std::vector<std::string> json_args;
  std::vector<Heredoc> heredocs;
  bool heredoc_only = false;  // args are one heredoc opener alone (RUN <<EOF): it is the script

  const Flag* flag(const std::string& name) const;
};

struct Dockerfile {
  std::string path;
  char escape = '\\';
  std::vector<Instruction> instructions;
};

// Parses `text` (read from `path`, used in messages). Throws BuildError at the
// first syntax error with its line and column.
Dockerfile parse_dockerfile(const std::string& text, const std::string& path);

}  // namespace nemokit::dockerfile
