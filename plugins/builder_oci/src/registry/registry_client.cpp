// The HTTP side of the distribution API for pulls and pushes (see registry_client.hpp).
#include "registry_client.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "auth_challenge.hpp"
#include "registry_replies.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/runtime/fd_io.hpp"

namespace nemokit::registry {
using dockerfile::BuildError;  // a failed pull is reported as a failed FROM

namespace {

size_t on_body(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<Sink*>(p);
  size_t len = size * n;
  if (s->hash) s->hash->update(data, len);
  if (s->fd >= 0) {
    if (!rt::write_all(s->fd, data, len)) {
      s->failed = true;
      return 0;
    }
  } else if (s->text) {
    if (s->text->size() + len > s->limit) return 0;
    s->text->append(data, len);
  }
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* p) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(p);
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*headers)[name] = value;
  } else if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a redirect or 100 Continue): only its headers count
  }
  return size * n;
}

// Feeds an upload body to libcurl: from memory, or from a file range with pread.
struct BodyReader {
  const Body* body;
  int fd = -1;
  uint64_t done = 0;
  bool failed = false;
};

size_t on_read(char* buf, size_t size, size_t n, void* p) {
  auto* r = static_cast<BodyReader*>(p);
  uint64_t total = r->body->text ? r->body->text->size() : r->body->size;
  size_t want = size_t(std::min<uint64_t>(size * n, total - r->done));
  if (want == 0) return 0;
  if (r->body->text) {
    std::memcpy(buf, r->body->text->data() + r->done, want);
  } else {
    ssize_t got = pread(r->fd, buf, want, off_t(r->body->offset + r->done));
    if (got <= 0) {
      r->failed = true;
      return CURL_READFUNC_ABORT;
    }
    want = size_t(got);
  }
  r->done += want;
  return want;
}

std::string url_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

Client::Client(const ImageReference& ref, const std::filesystem::path& credentials_file, bool insecure_http, std::string actions)
    : handle_(nullptr, [](void* h) { curl_easy_cleanup(static_cast<CURL*>(h)); }),
      ref_(ref),
      credentials_file_(credentials_file.empty() ? default_credentials_file() : credentials_file),
      actions_(std::move(actions)) {
  static bool curl_ready = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!curl_ready) throw BuildError("libcurl could not be initialized");
  handle_.reset(curl_easy_init());
  if (!handle_) throw BuildError("libcurl: cannot start a request");
  std::string host =
      ref.registry.substr(0, ref.registry.rfind(':') == std::string::npos ? std::string::npos : ref.registry.rfind(':'));
  bool loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
  origin_ = std::string(insecure_http || loopback ? "http" : "https") + "://" + ref.registry;
  base_ = origin_ + "/v2/" + ref.repository;
  // Docker Hub's tokens come from auth.docker.io: an entry for either name serves.
  creds_ = find_credentials(credentials_file_, ref.registry == "registry-1.docker.io" ? "auth.docker.io" : ref.registry);
  if (!creds_ && ref.registry == "registry-1.docker.io") creds_ = find_credentials(credentials_file_, "registry-1.docker.io");
}

std::string Client::url(const std::string& target) const {
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) return target;
  if (target.rfind("/v2/", 0) == 0) return origin_ + target;  // a Location header's path
  return base_ + target;
}

Response Client::send(const Request& req, Sink sink, const std::function<void()>& reset) {
  std::string u = url(req.target);
  Response r = once(req, u, sink);
  if (r.status == 401) {
    authenticate(r.headers["www-authenticate"]);
    if (reset) reset();
    r = once(req, u, sink);
  }
  return r;
}

Response Client::once(const Request& req, const std::string& url, Sink& sink, bool with_auth) {
  Response r;
  CURL* c = static_cast<CURL*>(handle_.get());
  curl_easy_reset(c);  // every option back to its default; open connections stay
  struct curl_slist* headers = nullptr;
  if (!req.accept.empty()) headers = curl_slist_append(headers, ("Accept: " + req.accept).c_str());
  if (with_auth && !auth_.empty()) headers = curl_slist_append(headers, ("Authorization: " + auth_).c_str());
  for (auto& [k, v] : req.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  std::string small;
  Sink error_sink{&small};
  BodyReader reader{req.body ? &*req.body : nullptr};
  std::unique_ptr<int, void (*)(int*)> body_fd(nullptr, [](int* fd) { close(*fd), delete fd; });
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "nemokit");
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST" && !req.body) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
  } else if (req.method != "GET") {
    // PUT and PATCH (and a POST with a body) stream their body through on_read.
    if (req.body && !req.body->text && !req.body->file.empty()) {
      reader.fd = open(req.body->file.c_str(), O_RDONLY | O_CLOEXEC);
      if (reader.fd < 0) {
        curl_slist_free_all(headers);
        throw BuildError(req.body->file.string() + ": " + std::strerror(errno));
      }
      body_fd.reset(new int(reader.fd));
    }
    if (req.body && !req.body->content_type.empty())
      headers = curl_slist_append(headers, ("Content-Type: " + req.body->content_type).c_str());
    uint64_t size = !req.body ? 0 : req.body->text ? req.body->text->size() : req.body->size;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, curl_off_t(size));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &reader);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  struct Ctx {
    Sink* ok;
    Sink* err;
    CURL* c;
  } ctx{&sink, &error_sink, c};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ctx);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* p) -> size_t {
        auto* x = static_cast<Ctx*>(p);
        long code = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
        return on_body(d, s, n, code >= 200 && code < 300 ? x->ok : x->err);
      });
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  if (reader.failed) throw BuildError(req.body->file.string() + ": reading the upload failed");
  if (rc != CURLE_OK) {
    std::string why = curl_easy_strerror(rc);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT)
      throw BuildError("cannot reach the registry " + ref_.registry + " (" + url + "): " + why);
    throw BuildError(url + ": " + why);
  }
  if (sink.failed) throw BuildError(url + ": writing the download failed");
  r.body = r.status >= 200 && r.status < 300 && sink.text ? *sink.text : small;
  return r;
}

void Client::authenticate(const std::string& challenge) {
  std::string scheme = challenge.substr(0, challenge.find(' '));
  for (auto& ch : scheme) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  std::string basic;
  if (creds_) basic = "Basic " + base64(creds_->login + ":" + creds_->password);
  if (scheme == "basic") {
    if (basic.empty())
      throw BuildError(ref_.registry + " asks for a login: add \"machine " + ref_.registry + " login USER password SECRET\" to " +
                       credentials_file_.string());
    auth_ = basic;
    return;
  }
  if (scheme != "bearer") throw BuildError(ref_.registry + ": unsupported authentication '" + challenge + "'");
  auto p = auth_challenge_params(challenge);
  if (p["realm"].empty()) throw BuildError(ref_.registry + ": bearer challenge without a realm");
  std::string token_url = p["realm"] + "?service=" + url_escape(p["service"]);
  // The challenge names the scope the refused request needed; for this repository the token asks
  // for all this client will do (a push: "pull,push", as Docker's does), so that the uploads
  // after a HEAD are not refused for a pull-only token.
  const std::string own = "repository:" + ref_.repository + ":";
  std::string scope = p.count("scope") ? p["scope"] : own + actions_;
  if (scope.rfind(own, 0) == 0) scope = own + actions_;
  token_url += "&scope=" + url_escape(scope);
  std::string saved = auth_;
  auth_ = basic;
  std::string text;
  Sink sink{&text};
  Response r = once(Request{"GET", token_url}, token_url, sink, !basic.empty());
  auth_ = saved;
  if (r.status != 200)
    throw BuildError(p["realm"] + ": token request failed with HTTP " + std::to_string(r.status) +
                     (creds_ ? " (with the credentials for " + ref_.registry + " from " + credentials_file_.string() + ")"
                             : " (no credentials for " + ref_.registry + " in " + credentials_file_.string() + ")"));
  auth_ = "Bearer " + token_of_reply(r.body, p["realm"]);
}

std::string Client::failure(const std::string& what, const Response& r) const {
  std::string out = what + ": HTTP " + std::to_string(r.status);
  // The distribution API's error body: {"errors":[{"code":..., "message":...}]}.
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  std::string said;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array())
    for (auto& e : j["errors"])
      if (e.is_object())
        said += (said.empty() ? "" : "; ") + e.value("code", std::string()) + (e.contains("message") ? " " : "") +
                (e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "");
  if (!said.empty())
    out += ": " + said.substr(0, 300);
  else if (!r.body.empty())
    out += ": " + r.body.substr(0, 300);
  if (r.status == 401)
    out += creds_
               ? " (authentication failed with the credentials for " + ref_.registry + " from " + credentials_file_.string() + ")"
               : " (no credentials for " + ref_.registry + " in " + credentials_file_.string() + ": add \"machine " +
                     ref_.registry + " login USER password SECRET\")";
  else if (r.status == 403)
    out += " (the registry denies " + actions_ + " of " + ref_.repository + " to " + (creds_ ? creds_->login : "anonymous") + ")";
  return out;
}

}  // namespace nemokit::registry
