// What every fuzz target counts as a finding besides a crash or a hang: an exception that is
// not the product's own error type (it would reach the user as raw library text), or a product
// error whose message shows raw library text ("basic_string::substr", "stoul",
// "[json.exception...") that the input itself did not contain.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <unistd.h>

namespace nemokit::fuzz {

inline void check_message(std::string_view message, std::string_view input) {
  for (std::string_view raw : {"std::", "basic_string", "stoul", "stoi", "stoll", "stod", "[json.exception",
                               "bad_alloc", "vector::", "map::at"}) {
    const size_t at = message.find(raw);
    // A JSON syntax error is nlohmann's own text ("[json.exception.parse_error.101] parse error at
    // line 1, column 5: ..."), which gives the place; it is fine after the file it concerns.
    if (raw == "[json.exception" && message.substr(at == message.npos ? 0 : at).starts_with("[json.exception.parse_error") &&
        at > 0)
      continue;
    if (at != std::string_view::npos && input.find(raw) == std::string_view::npos) {
      std::fprintf(stderr, "FINDING: raw library text \"%.*s\" in: %.*s\n", int(raw.size()), raw.data(),
                   int(message.size()), message.data());
      std::abort();
    }
  }
}

// Runs `body`; an `Expected` exception is the parser refusing the input (its message is
// checked), any other one is a finding.
template <class Expected, class Body>
void expect_only(std::string_view input, Body&& body) {
  try {
    body();
  } catch (const Expected& e) {
    check_message(e.what(), input);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FINDING: unexpected exception: %s\n", e.what());
    std::abort();
  }
}

// A private folder for targets that must hand the parser a file; removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("nemokit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                      ("nemokit-fuzz-" + std::to_string(::getpid())), ec);
    });
    return d;
  }();
  return dir;
}

}  // namespace nemokit::fuzz
