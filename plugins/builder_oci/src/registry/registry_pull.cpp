// Pull = manifest (an index picks linux/amd64), config and layer blobs, each
// checked against its digest, kept by digest in <cache>/registry/blobs, then
// an OCI image layout of hard links that the image reader opens like any other.
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "auth_challenge.hpp"
#include "credentials.hpp"
#include "registry_replies.hpp"
#include "nemokit/dockerfile/dockerfile.hpp"
#include "nemokit/registry/registry.hpp"
#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/fd_io.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace nemokit::registry {
namespace fs = std::filesystem;
using dockerfile::BuildError;  // a failed pull is reported as a failed FROM
using nlohmann::json;

namespace {

const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// Where a response body goes: memory, or a file while being hashed.
struct Sink {
  std::string* text = nullptr;
  int fd = -1;
  rt::Sha256* hash = nullptr;
  bool failed = false;
  size_t limit = 64u << 20;
};

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
  }
  return size * n;
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

class Client {
 public:
  Client(const ImageReference& ref, const PullOptions& opt) : ref_(ref) {
    std::string host =
        ref.registry.substr(0, ref.registry.rfind(':') == std::string::npos ? std::string::npos : ref.registry.rfind(':'));
    bool loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
    base_ = std::string(opt.insecure_http || loopback ? "http" : "https") + "://" + ref.registry + "/v2/" + ref.repository;
    creds_ = find_credentials(opt.credentials_file.empty() ? default_credentials_file() : opt.credentials_file,
                              ref.registry == "registry-1.docker.io" ? "auth.docker.io" : ref.registry);
    if (!creds_ && ref.registry == "registry-1.docker.io")
      creds_ = find_credentials(opt.credentials_file.empty() ? default_credentials_file() : opt.credentials_file,
                                "registry-1.docker.io");
  }

  // GETs base_+path, answering one auth challenge.
  Response get(const std::string& path, const std::string& accept, Sink sink, const std::function<void()>& reset) {
    Response r = once(base_ + path, accept, sink);
    if (r.status == 401) {
      authenticate(r.headers["www-authenticate"]);
      if (reset) reset();
      r = once(base_ + path, accept, sink);
    }
    return r;
  }

  std::string where(const std::string& path) const { return base_ + path; }

 private:
  Response once(const std::string& url, const std::string& accept, Sink& sink, bool with_auth = true) {
    Response r;
    CURL* c = curl_easy_init();
    if (!c) throw BuildError("libcurl: cannot start a request");
    struct curl_slist* headers = nullptr;
    if (!accept.empty()) headers = curl_slist_append(headers, ("Accept: " + accept).c_str());
    if (with_auth && !auth_.empty()) headers = curl_slist_append(headers, ("Authorization: " + auth_).c_str());
    std::string small;
    Sink error_sink{&small};
    Sink* active = &sink;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "nemokit");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
    // Error bodies (and 401s) go to memory, never into a blob file.
    struct Ctx {
      Sink* ok;
      Sink* err;
      CURL* c;
    } ctx{active, &error_sink, c};
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
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) throw BuildError(url + ": " + curl_easy_strerror(rc));
    if (sink.failed) throw BuildError(url + ": writing the download failed");
    r.body = r.status >= 200 && r.status < 300 && sink.text ? *sink.text : small;
    return r;
  }

  void authenticate(const std::string& challenge) {
    std::string scheme = challenge.substr(0, challenge.find(' '));
    for (auto& ch : scheme) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    std::string basic;
    if (creds_) {
      std::string raw = creds_->login + ":" + creds_->password;
      basic = "Basic " + base64(raw);
    }
    if (scheme == "basic") {
      if (basic.empty())
        throw BuildError(ref_.registry + " asks for a login: add \"machine " + ref_.registry +
                         " login USER password SECRET\" to " + default_credentials_file().string());
      auth_ = basic;
      return;
    }
    if (scheme != "bearer") throw BuildError(ref_.registry + ": unsupported authentication '" + challenge + "'");
    auto p = auth_challenge_params(challenge);
    if (p["realm"].empty()) throw BuildError(ref_.registry + ": bearer challenge without a realm");
    std::string url = p["realm"] + "?service=" + url_escape(p["service"]);
    url += "&scope=" + url_escape(p.count("scope") ? p["scope"] : "repository:" + ref_.repository + ":pull");
    std::string saved = auth_;
    auth_ = basic;
    std::string text;
    Sink sink{&text};
    Response r = once(url, "", sink, !basic.empty());
    auth_ = saved;
    if (r.status != 200)
      throw BuildError(p["realm"] + ": token request failed with HTTP " + std::to_string(r.status) +
                       (creds_ ? "" : " (no credentials for " + ref_.registry + ")"));
    auth_ = "Bearer " + token_of_reply(r.body, p["realm"]);
  }

  static std::string base64(const std::string& in) {
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

  ImageReference ref_;
  std::string base_;
  std::optional<Credentials> creds_;
  std::string auth_;
};

void check_digest(const std::string& digest, const std::string& what) {
  if (!rt::is_sha256_digest(digest)) throw BuildError(what + ": unsupported digest '" + digest + "'");
}

class Puller {
 public:
  Puller(const ImageReference& ref, const fs::path& cache, const PullOptions& opt)
      : ref_(ref), client_(ref, opt), blobs_(cache / "registry" / "blobs" / "sha256") {
    fs::create_directories(blobs_);
  }

  // A manifest or index by tag or digest; verified when asked by digest.
  std::pair<std::string, std::string> manifest(const std::string& reference) {
    std::string text;
    Response r = client_.get("/manifests/" + reference, kManifestAccept, Sink{&text}, [&] { text.clear(); });
    if (r.status != 200)
      throw BuildError(client_.where("/manifests/" + reference) + ": HTTP " + std::to_string(r.status) +
                       (r.body.empty() ? "" : ": " + r.body.substr(0, 300)));
    std::string digest = rt::Sha256::digest_of(text);
    if (reference.rfind("sha256:", 0) == 0 && digest != reference)
      throw BuildError(client_.where("/manifests/" + reference) + ": content does not match its digest");
    return {text, digest};
  }

  fs::path store_bytes(const std::string& text) {
    std::string digest = rt::Sha256::digest_of(text);
    fs::path p = blobs_ / digest.substr(7);
    if (!fs::exists(p)) {
      rt::AtomicOutput out(p);
      std::ofstream(out.temp_path(), std::ios::binary) << text;
      out.commit();
    }
    return p;
  }

  fs::path blob(const std::string& digest) {
    check_digest(digest, ref_.str());
    fs::path p = blobs_ / digest.substr(7);
    if (fs::exists(p)) return p;
    rt::AtomicOutput out(p);
    int fd = -1;
    rt::Sha256 hash;
    auto open_fresh = [&] {
      if (fd >= 0) close(fd);
      fd = open(out.temp_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) throw BuildError(out.temp_path().string() + ": " + std::strerror(errno));
      hash = rt::Sha256();
    };
    open_fresh();
    Sink sink{nullptr, fd, &hash};
    Response r;
    try {
      r = client_.get("/blobs/" + digest, "", sink, [&] {
        open_fresh();
        sink.fd = fd;
      });
    } catch (...) {
      close(fd);
      throw;
    }
    fsync(fd);
    close(fd);
    if (r.status != 200) throw BuildError(client_.where("/blobs/" + digest) + ": HTTP " + std::to_string(r.status));
    if (hash.finish_digest() != digest)
      throw BuildError(client_.where("/blobs/" + digest) + ": downloaded content does not match its digest");
    out.commit();
    return p;
  }

  fs::path pull(const fs::path& layout) {
    auto [text, digest] = manifest(ref_.reference);
    ManifestReply m = read_manifest_reply(text, ref_.str());
    if (m.is_list) {
      std::tie(text, digest) = manifest(platform_manifest_digest(m, ref_.str()));
      m = read_manifest_reply(text, ref_.str());
    }
    std::vector<std::string> digests = image_manifest_blobs(m, ref_.str());
    store_bytes(text);
    std::string mt = m.media_type.empty() ? "application/vnd.oci.image.manifest.v1+json" : m.media_type;
    for (auto& d : digests) blob(d);

    fs::create_directories(layout / "blobs" / "sha256");
    digests.push_back(digest);
    for (auto& d : digests) {
      fs::path link = layout / "blobs" / "sha256" / d.substr(7);
      if (fs::exists(link)) continue;
      std::error_code ec;
      fs::create_hard_link(blobs_ / d.substr(7), link, ec);
      if (ec) fs::copy_file(blobs_ / d.substr(7), link);
    }
    json index = {{"schemaVersion", 2},
                  {"manifests",
                   {{{"mediaType", mt.empty() ? "application/vnd.oci.image.manifest.v1+json" : mt},
                     {"digest", digest},
                     {"size", text.size()},
                     {"annotations", {{"org.opencontainers.image.ref.name", "latest"}}}}}}};
    {
      rt::AtomicOutput out(layout / "oci-layout");
      std::ofstream(out.temp_path()) << R"({"imageLayoutVersion":"1.0.0"})";
      out.commit();
    }
    rt::AtomicOutput out(layout / "index.json");
    std::ofstream(out.temp_path()) << index.dump();
    out.commit();
    return layout;
  }

 private:
  ImageReference ref_;
  Client client_;
  fs::path blobs_;
};

std::string safe_name(std::string s) {
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return s;
}

}  // namespace

fs::path pull_image(const ImageReference& ref, const fs::path& build_cache_dir, const PullOptions& options) {
  static bool curl_ready = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!curl_ready) throw BuildError("libcurl could not be initialized");
  fs::path layout =
      build_cache_dir / "registry" / "images" / safe_name(ref.registry) / safe_name(ref.repository) / safe_name(ref.reference);
  std::cerr << "pulling " << ref.str() << "\n";
  return Puller(ref, build_cache_dir, options).pull(layout);
}

}  // namespace nemokit::registry
