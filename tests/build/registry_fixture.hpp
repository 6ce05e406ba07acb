#pragma once
// Debian's docker-registry on loopback for the registry tests (pulls and pushes): the server
// with no auth, htpasswd (basic) or token auth, a token service minting RS256 JWTs with the
// openssl program, and a small independent push helper (blob uploads and manifest PUTs over
// libcurl) that puts test images there as Docker media types, with a manifest list holding an
// arm64 and an amd64 image.
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "build_test_support.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "support/process.hpp"

namespace regtest {
using namespace buildtest;
using nemokit::rt::Sha256;
using nlohmann::json;

inline int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(s);
  return port;
}

// A gzip tar with one file, made with libarchive.
inline std::string layer_tgz(const std::string& name, const std::string& content) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* p, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(p)->append(static_cast<const char*>(b), n);
        return la_ssize_t(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, la_int64_t(content.size()));
  archive_write_header(a, e);
  archive_write_data(a, content.data(), content.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string gunzip_tar_digest(const std::string& tgz) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_raw(a);
  archive_read_open_memory(a, tgz.data(), tgz.size());
  archive_entry* e;
  archive_read_next_header(a, &e);
  std::string tar;
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data(a, buf, sizeof buf)) > 0) tar.append(buf, size_t(n));
  archive_read_free(a);
  return Sha256::digest_of(tar);
}

// The push side of the distribution API, enough for the test.
class Pusher {
 public:
  Pusher(std::string base, std::string auth) : base_(std::move(base)), auth_(std::move(auth)) {}

  long request(const std::string& method, const std::string& url, const std::string& body, const std::string& content_type,
               std::string* location = nullptr) {
    CURL* c = curl_easy_init();
    curl_slist* h = nullptr;
    if (!content_type.empty()) h = curl_slist_append(h, ("Content-Type: " + content_type).c_str());
    if (!auth_.empty()) h = curl_slist_append(h, ("Authorization: " + auth_).c_str());
    std::string headers;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(body.size()));
    curl_easy_setopt(
        c, CURLOPT_HEADERFUNCTION, +[](char* d, size_t s, size_t n, void* p) -> size_t {
          static_cast<std::string*>(p)->append(d, s * n);
          return s * n;
        });
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(
        c, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) -> size_t { return s * n; });
    curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (location) {
      size_t at = headers.find("Location: ");
      if (at == std::string::npos) at = headers.find("location: ");
      if (at != std::string::npos) *location = headers.substr(at + 10, headers.find('\r', at) - at - 10);
    }
    return code;
  }

  std::string blob(const std::string& repo, const std::string& data) {
    std::string digest = Sha256::digest_of(data), location;
    EXPECT_EQ(request("POST", base_ + "/v2/" + repo + "/blobs/uploads/", "", "", &location), 202);
    if (location.rfind("http", 0) != 0) location = base_ + location;
    location += (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
    EXPECT_EQ(request("PUT", location, data, "application/octet-stream"), 201);
    return digest;
  }

  std::string manifest(const std::string& repo, const std::string& ref, const std::string& text, const std::string& type) {
    EXPECT_EQ(request("PUT", base_ + "/v2/" + repo + "/manifests/" + ref, text, type), 201);
    return Sha256::digest_of(text);
  }

  // An image of one layer (one file) as a Docker schema 2 manifest; returns its digest.
  std::pair<std::string, size_t> image(const std::string& repo, const std::string& arch, const std::string& file,
                                       const std::string& content) {
    std::string layer = layer_tgz(file, content);
    std::string layer_digest = blob(repo, layer);
    json config = {{"architecture", arch},
                   {"os", "linux"},
                   {"config", {{"Env", {"FROM_REGISTRY=" + arch}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {gunzip_tar_digest(layer)}}}}};
    std::string config_text = config.dump();
    std::string config_digest = blob(repo, config_text);
    json m = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
              {"config",
               {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                {"size", config_text.size()},
                {"digest", config_digest}}},
              {"layers",
               {{{"mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"},
                 {"size", layer.size()},
                 {"digest", layer_digest}}}}};
    std::string text = m.dump();
    std::string digest = Sha256::digest_of(text);
    manifest(repo, digest, text, "application/vnd.docker.distribution.manifest.v2+json");
    return {digest, text.size()};
  }

  void push_test_image(const std::string& repo, const std::string& tag) {
    auto arm = image(repo, "arm64", "which.txt", "arm64 layer\n");
    auto amd = image(repo, "amd64", "which.txt", "amd64 layer\n");
    json list = {{"schemaVersion", 2},
                 {"mediaType", "application/vnd.docker.distribution.manifest.list.v2+json"},
                 {"manifests",
                  {{{"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                    {"size", arm.second},
                    {"digest", arm.first},
                    {"platform", {{"architecture", "arm64"}, {"os", "linux"}}}},
                   {{"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                    {"size", amd.second},
                    {"digest", amd.first},
                    {"platform", {{"architecture", "amd64"}, {"os", "linux"}}}}}}};
    manifest(repo, tag, list.dump(), "application/vnd.docker.distribution.manifest.list.v2+json");
  }

 private:
  std::string base_, auth_;
};

class Registry {
 public:
  // auth: "" (none), "htpasswd", or a token realm URL (cert in dir/cert.pem).
  Registry(const fs::path& dir, const std::string& auth) : port_(free_port()) {
    std::string cfg =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: " + (dir / "storage").string() +
        "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
    if (auth.rfind("http", 0) == 0) {
      cfg += "auth:\n  token:\n    realm: " + auth +
             "\n    service: nemokit-test-registry\n    issuer: nemokit-test\n"
             "    rootcertbundle: " +
             (dir / "cert.pem").string() + "\n";
    } else if (auth == "htpasswd") {
      Result h = run({"htpasswd", "-Bbn", "tester", "s3cret"});
      EXPECT_EQ(h.code, 0) << h.err;
      write_file(dir / "htpasswd", h.out);
      cfg += "auth:\n  htpasswd:\n    realm: nemokit-test\n    path: " + (dir / "htpasswd").string() + "\n";
    }
    write_file(dir / "config.yml", cfg);
    server_ = std::make_unique<nemokit::test::Process>(
        std::vector<std::string>{"docker-registry", "serve", (dir / "config.yml").string()});
    // Ready when /v2/ answers.
    for (int i = 0; i < 100; ++i) {
      Pusher p(base(), "");
      long code = p.request("GET", base() + "/v2/", "", "");
      if (code == 200 || code == 401) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "docker-registry did not start";
  }
  ~Registry() {
    kill(server_->pid(), SIGTERM);
    server_->wait(30);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // What the server printed so far: its access log ("POST /v2/.../blobs/uploads/ ...") among it.
  std::string log() const { return server_->out_so_far() + server_->err_so_far(); }
  std::string base() const { return "http://" + host(); }

 private:
  int port_;
  std::unique_ptr<nemokit::test::Process> server_;
};

inline std::string base64(const std::string& in, bool url) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (unsigned char c : in) {
    v = (v << 8) | c;
    bits += 8;
    while (bits >= 6) out += t[(v >> (bits -= 6)) & 63];
  }
  if (bits) out += t[(v << (6 - bits)) & 63];
  if (!url)
    while (out.size() % 4) out += '=';
  if (url)
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

// A token service as docker-registry's token auth expects: RS256 JWTs with
// the signing certificate in "x5c", minted with the openssl program. It
// answers every request with one token and remembers what was asked.
class TokenServer {
 public:
  explicit TokenServer(const fs::path& dir) : port_(free_port()) {
    Result k = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", (dir / "key.pem").string(), "-out",
                    (dir / "cert.pem").string(), "-days", "1", "-subj", "/CN=nemokit-test"});
    EXPECT_EQ(k.code, 0) << k.err;
    Result der = run({"openssl", "x509", "-in", (dir / "cert.pem").string(), "-outform", "DER"});
    long now = long(time(nullptr));
    json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {base64(der.out, false)}}};
    json claims = {{"iss", "nemokit-test"},
                   {"sub", "tester"},
                   {"aud", "nemokit-test-registry"},
                   {"exp", now + 3600},
                   {"nbf", now - 60},
                   {"iat", now - 60},
                   {"jti", "nemokit-test-token"},
                   {"access", {{{"type", "repository"}, {"name", "test/tokened"}, {"actions", {"pull", "push"}}}}}};
    std::string input = base64(header.dump(), true) + "." + base64(claims.dump(), true);
    write_file(dir / "jwt-input", input);
    Result sig = run({"openssl", "dgst", "-sha256", "-sign", (dir / "key.pem").string(), (dir / "jwt-input").string()});
    EXPECT_EQ(sig.code, 0) << sig.err;
    token_ = input + "." + base64(sig.out, true);
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port_));
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    listen(listen_fd_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~TokenServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
  }
  std::string realm() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  const std::string& token() const { return token_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(m_);
    return requests_;
  }

 private:
  void serve() {
    while (true) {
      int c = accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, size_t(n));
      }
      {
        std::lock_guard<std::mutex> l(m_);
        requests_.push_back(req);
      }
      std::string body = json{{"token", token_}}.dump();
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      ssize_t unused = write(c, resp.data(), resp.size());
      (void)unused;
      close(c);
    }
  }
  int port_;
  int listen_fd_ = -1;
  std::string token_;
  std::thread thread_;
  std::mutex m_;
  std::vector<std::string> requests_;
};

}  // namespace regtest
