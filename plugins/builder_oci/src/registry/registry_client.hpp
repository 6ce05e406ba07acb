#pragma once
// One registry repository spoken to over HTTP(S) with libcurl, shared by pulls and pushes:
// requests of any method with a body from memory or from a file range, answers to auth
// challenges (basic, or a bearer token fetched from the challenge's realm with the enroot
// credentials as basic auth), and errors that name the URL and what the registry said.
// Private to src/registry.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "credentials.hpp"
#include "nemokit/registry/registry.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {

struct Response {
  long status = 0;
  std::string body;                            // error bodies, and bodies asked for in memory
  std::map<std::string, std::string> headers;  // lower-case names
};

// Where a 2xx response body goes: memory, or a file while being hashed. Error bodies always
// go to memory (Response::body), never into a blob file.
struct Sink {
  std::string* text = nullptr;
  int fd = -1;
  rt::Sha256* hash = nullptr;
  bool failed = false;
  size_t limit = 64u << 20;
};

// What a request sends: nothing, bytes in memory, or `size` bytes of `file` from `offset`
// (a blob file, or a member of an image tar read in place).
struct Body {
  const std::string* text = nullptr;
  std::filesystem::path file;
  uint64_t offset = 0;
  uint64_t size = 0;
  std::string content_type;
};

struct Request {
  Request(std::string m, std::string t, std::string a = {}) : method(std::move(m)), target(std::move(t)), accept(std::move(a)) {}
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH
  std::string target;          // a path under /v2/<repository> ("/blobs/...") or an absolute URL
  std::string accept;
  std::optional<Body> body;
  std::map<std::string, std::string> headers;  // more request headers (Content-Range)
};

class Client {
 public:
  // `actions`: the token scope asked for when a challenge names none ("pull" or "pull,push").
  Client(const ImageReference& ref, const std::filesystem::path& credentials_file, bool insecure_http, std::string actions);

  // Sends `req`, answering one auth challenge: on a 401 it authenticates and sends again
  // (`reset` first undoes what the sink got). Transport failures throw BuildError naming the
  // registry and the URL; HTTP statuses are the caller's to judge.
  Response send(const Request& req, Sink sink = {}, const std::function<void()>& reset = {});

  // The absolute URL of a target: base + path, a Location header's path on the registry's
  // host, or an absolute URL as it is.
  std::string url(const std::string& target) const;
  std::string where(const std::string& path) const { return url(path); }

  // "<what>: HTTP <status>" with the registry's own error message, and what to do about a
  // 401 (credentials, naming the file) or a 403.
  std::string failure(const std::string& what, const Response& r) const;

  const ImageReference& ref() const { return ref_; }

 private:
  Response once(const Request& req, const std::string& url, Sink& sink, bool with_auth = true);
  void authenticate(const std::string& challenge);

  // One libcurl handle for every request: its connection cache keeps the registry's connection
  // (and TLS session) open between the many small requests of a pull or push.
  std::unique_ptr<void, void (*)(void*)> handle_;
  ImageReference ref_;
  std::string origin_;  // scheme://host[:port]
  std::string base_;    // origin_/v2/<repository>
  std::filesystem::path credentials_file_;
  std::optional<Credentials> creds_;
  std::string actions_;
  std::string auth_;  // the Authorization header's value
};

}  // namespace nemokit::registry
