// Internal: argument parsing shared by the `nemokit model` subcommands, and the
// subcommands that live in their own files.
#pragma once
#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace nemokit::rt::cli {

// A mistake in the command line: exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --key value pairs after the positional arguments; every key must be in `allowed`.
struct Options {
  std::vector<std::string> positional;
  std::map<std::string, std::string> named;

  Options(const std::vector<std::string>& args, size_t from, const std::vector<std::string>& allowed) {
    for (size_t i = from; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0) {
        positional.push_back(a);
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), a) == allowed.end()) throw UsageError("unknown option " + a);
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      named[a] = args[++i];
    }
  }
  bool has(const std::string& k) const { return named.count(k) > 0; }
  std::string get(const std::string& k) const { return named.at(k); }

  template <class T> T number(const std::string& k, T fallback) const {
    if (!has(k)) return fallback;
    const std::string& s = named.at(k);
    T value{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size()) throw UsageError(k + ": '" + s + "' is not a valid number");
    return value;
  }
};

// model_convert_cli.cpp
int cmd_export(const std::vector<std::string>& args);
int cmd_import(const std::vector<std::string>& args);
int cmd_lora_merge(const std::vector<std::string>& args);
int cmd_adapter_export(const std::vector<std::string>& args);

}  // namespace nemokit::rt::cli
