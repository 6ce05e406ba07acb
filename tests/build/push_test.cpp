// `nemokit image push` against Debian's docker-registry on loopback (registry_fixture.hpp): an
// image nemokit built goes up, comes back through nemokit's pull (and skopeo's, where it is
// installed) with the same digests, a second push sends no blob, chunked uploads, basic and
// token auth, and the errors for a refused login and a registry nobody answers at.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "build_test_support.hpp"
#include "nemokit/registry/registry.hpp"
#include "registry_fixture.hpp"

namespace {
using namespace regtest;

class ImagePush : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "builds need root";
    if (run({"sh", "-c", "command -v docker-registry && command -v htpasswd"}).code != 0)
      GTEST_SKIP() << "docker-registry / htpasswd not installed (scripts/setup-deps.sh)";
  }

  // Builds `tag` into `cache`: two layers, one of them `big_bytes` of random data (it does not
  // compress, so its blob is that large).
  void build_image(const fs::path& dir, const fs::path& cache, const std::string& tag, size_t big_bytes = 4096) {
    std::string big(big_bytes, '\0');
    unsigned x = 12345;
    for (auto& c : big) c = char((x = x * 1103515245u + 12345u) >> 16);
    write_file(dir / "ctx/hello.txt", "hello from " + tag + "\n");
    write_file(dir / "ctx/big.bin", big);
    write_file(dir / "ctx/Dockerfile", "FROM scratch\nCOPY hello.txt /\nCOPY big.bin /data/\nENV PUSHED=" + tag + "\n");
    Result r = run({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", tag},
                   {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
    ASSERT_EQ(r.code, 0) << r.err;
  }

  Result push(const fs::path& cache, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {nemokit_binary(), "image", "push"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> e = env;
    e.push_back("NEMOKIT_BUILD_CACHE_DIR=" + cache.string());
    return run(argv, e);
  }

  static std::string built_digest(const fs::path& cache, const std::string& tag) {
    return json::parse(read_file(cache / "oci" / tag / "index.json"))["manifests"][0]["digest"];
  }

  // Every blob of the layout at `pulled` has the same bytes as the built image's.
  static void expect_same_blobs(const fs::path& cache, const std::string& tag, const fs::path& pulled) {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(pulled / "blobs/sha256")) {
      fs::path mine = cache / "oci" / tag / "blobs/sha256" / e.path().filename();
      ASSERT_TRUE(fs::exists(mine)) << e.path();
      EXPECT_EQ(read_file(e.path()), read_file(mine)) << e.path();
      ++n;
    }
    EXPECT_EQ(n, 4u);  // manifest, config, two layers
  }

  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }
};

TEST_F(ImagePush, ABuiltImageComesBackWithTheSameDigests) {
  fs::path dir = scratch_dir("push-open");
  fs::path cache = dir / "cache";
  build_image(dir, cache, "pushed");
  Registry reg(dir / "registry", "");
  const std::string dest = reg.host() + "/test/pushed:v1";
  Result r = push(cache, {"pushed", dest});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string digest = built_digest(cache, "pushed");
  EXPECT_EQ(r.out, reg.host() + "/test/pushed@" + digest + "\n");
  EXPECT_NE(r.err.find("3 blobs uploaded"), std::string::npos) << r.err;
  const size_t uploads = count(reg.log(), "\"POST /v2/test/pushed/blobs/uploads/");
  EXPECT_EQ(uploads, 3u) << reg.log();

  // Pulled back by nemokit: the manifest the registry serves is the built one, byte for byte,
  // and so is every blob.
  fs::path other = dir / "other-cache";
  fs::path pulled = nemokit::registry::pull_image(nemokit::registry::parse_reference(dest), other);
  EXPECT_EQ(json::parse(read_file(pulled / "index.json"))["manifests"][0]["digest"], digest);
  expect_same_blobs(cache, "pushed", pulled);
  // ... and built on: FROM the pushed image.
  write_file(dir / "ctx2/Dockerfile", "FROM " + dest + "\n");
  r = run({nemokit_binary(), "build", "-f", (dir / "ctx2/Dockerfile").string(), "--tag", "again"},
          {"NEMOKIT_BUILD_CACHE_DIR=" + other.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  {
    SquashfsMount mnt(other / "containers/again.sqsh");
    EXPECT_EQ(read_file(mnt.root() / "hello.txt"), "hello from pushed\n");
    EXPECT_EQ(read_file(mnt.root() / "etc/environment"),
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nPUSHED=pushed\n");
  }

  // Pushed again, under another tag too: every blob is there, none is sent.
  r = push(cache, {"pushed", dest});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("0 blobs uploaded (0 B), 3 already there"), std::string::npos) << r.err;
  r = push(cache, {"oci:" + (cache / "oci/pushed").string() + ":pushed", reg.host() + "/test/pushed:v2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("0 blobs uploaded (0 B), 3 already there"), std::string::npos) << r.err;
  EXPECT_EQ(count(reg.log(), "\"POST /v2/test/pushed/blobs/uploads/"), uploads) << reg.log();
  EXPECT_EQ(count(reg.log(), "\"PUT /v2/test/pushed/manifests/"), 3u) << reg.log();

  // An independent client sees the same manifest and can copy the image out.
  if (run({"sh", "-c", "command -v skopeo"}).code == 0) {
    Result raw = run({"skopeo", "inspect", "--tls-verify=false", "--raw", "docker://" + reg.host() + "/test/pushed:v2"});
    ASSERT_EQ(raw.code, 0) << raw.err;
    EXPECT_EQ(Sha256::digest_of(raw.out), digest);
    Result copy =
        run({"skopeo", "copy", "--src-tls-verify=false", "docker://" + dest, "oci:" + (dir / "skopeo").string() + ":v1"});
    ASSERT_EQ(copy.code, 0) << copy.err;
    EXPECT_EQ(json::parse(read_file(dir / "skopeo/index.json"))["manifests"][0]["digest"], digest);
    expect_same_blobs(cache, "pushed", dir / "skopeo");
  } else {
    std::cerr << "skopeo not installed: the independent client check is skipped\n";
  }

  // Images that are not there are named.
  r = push(cache, {"nope", dest});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no image \"nope\" built in " + cache.string()), std::string::npos) << r.err;
  r = push(cache, {"pushed"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("push needs an image and REGISTRY/REPO[:TAG]"), std::string::npos) << r.err;
}

TEST_F(ImagePush, ChunkedUploads) {
  fs::path dir = scratch_dir("push-chunked");
  fs::path cache = dir / "cache";
  build_image(dir, cache, "chunky", 40000);
  Registry reg(dir / "registry", "");
  const std::string dest = reg.host() + "/test/chunky:v1";
  Result r = push(cache, {"chunky", dest, "--chunk-size", "16K"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The big layer (about 40 KB) goes in three PATCHes and a closing PUT; the blobs no larger
  // than a chunk in one PUT each.
  EXPECT_EQ(count(reg.log(), "\"PATCH /v2/test/chunky/blobs/uploads/"), 3u) << reg.log();
  EXPECT_EQ(count(reg.log(), "\"PUT /v2/test/chunky/blobs/uploads/"), 3u) << reg.log();
  fs::path pulled = nemokit::registry::pull_image(nemokit::registry::parse_reference(dest), dir / "other");
  EXPECT_EQ(json::parse(read_file(pulled / "index.json"))["manifests"][0]["digest"], built_digest(cache, "chunky"));
  expect_same_blobs(cache, "chunky", pulled);
}

// A docker save archive has no manifest: one is made from its files (OCI, layers as stored),
// naming the same config and layer blobs as the image's own manifest.
TEST_F(ImagePush, ADockerSaveArchiveGetsAManifestMadeForIt) {
  fs::path dir = scratch_dir("push-docker-archive");
  fs::path cache = dir / "cache";
  build_image(dir, cache, "saved");
  const fs::path archive = dir / "saved.tar";
  Result r = run({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "saved", "--output",
                  "docker-archive:" + archive.string()},
                 {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  Registry reg(dir / "registry", "");
  const std::string dest = reg.host() + "/test/saved:v1";
  r = push(cache, {"docker-archive:" + archive.string(), dest});
  ASSERT_EQ(r.code, 0) << r.err;
  fs::path pulled = nemokit::registry::pull_image(nemokit::registry::parse_reference(dest), dir / "other");
  auto manifest_of = [](const fs::path& layout) {
    json index = json::parse(read_file(layout / "index.json"));
    return json::parse(read_file(layout / "blobs/sha256" / index["manifests"][0]["digest"].get<std::string>().substr(7)));
  };
  json mine = manifest_of(cache / "oci/saved"), theirs = manifest_of(pulled);
  EXPECT_EQ(theirs["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(theirs["config"]["digest"], mine["config"]["digest"]);
  ASSERT_EQ(theirs["layers"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(theirs["layers"][i]["digest"], mine["layers"][i]["digest"]);
    EXPECT_EQ(theirs["layers"][i]["size"], mine["layers"][i]["size"]);
    EXPECT_EQ(theirs["layers"][i]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");  // told by its first bytes
  }
}

TEST_F(ImagePush, BasicAuthAndItsErrors) {
  fs::path dir = scratch_dir("push-basic");
  fs::path cache = dir / "cache";
  build_image(dir, cache, "private");
  Registry reg(dir / "registry", "htpasswd");
  fs::path enroot = dir / "enroot";
  const std::vector<std::string> env = {"ENROOT_CONFIG_PATH=" + enroot.string()};
  const std::string dest = reg.host() + "/test/private:v1";
  Result r = push(cache, {"private", dest}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("asks for a login: add \"machine " + reg.host() + " login USER password SECRET\" to " +
                       (enroot / ".credentials").string()),
            std::string::npos)
      << r.err;

  write_file(enroot / ".credentials", "machine " + reg.host() + " login tester password wrong\n");
  r = push(cache, {"private", dest}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("HTTP 401"), std::string::npos) << r.err;
  EXPECT_NE(
      r.err.find("authentication failed with the credentials for " + reg.host() + " from " + (enroot / ".credentials").string()),
      std::string::npos)
      << r.err;

  write_file(enroot / ".credentials", "machine " + reg.host() + " login tester password s3cret\n");
  r = push(cache, {"private", dest}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  nemokit::registry::PullOptions options;
  options.credentials_file = enroot / ".credentials";
  fs::path pulled = nemokit::registry::pull_image(nemokit::registry::parse_reference(dest), dir / "other", options);
  EXPECT_EQ(json::parse(read_file(pulled / "index.json"))["manifests"][0]["digest"], built_digest(cache, "private"));

  // Nobody listens: the registry is named, not just a libcurl code.
  const std::string nowhere = "127.0.0.1:" + std::to_string(free_port());
  r = push(cache, {"private", nowhere + "/test/private:v1"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot reach the registry " + nowhere + " (http://" + nowhere + "/v2/test/private/blobs/"),
            std::string::npos)
      << r.err;
}

TEST_F(ImagePush, BearerTokenWithPushScope) {
  if (run({"sh", "-c", "command -v openssl"}).code != 0) GTEST_SKIP() << "openssl not installed";
  fs::path dir = scratch_dir("push-token");
  fs::path cache = dir / "cache";
  build_image(dir, cache, "tokened");
  fs::create_directories(dir / "registry");
  TokenServer tokens(dir / "registry");
  Registry reg(dir / "registry", tokens.realm());
  fs::path enroot = dir / "enroot";
  write_file(enroot / ".credentials", "machine " + reg.host() + " login tester password s3cret\n");
  Result r = push(cache, {"tokened", reg.host() + "/test/tokened:v1"}, {"ENROOT_CONFIG_PATH=" + enroot.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  // The upload asked for a token that may push, with the credentials as basic auth.
  bool asked_push = false;
  for (auto& q : tokens.requests()) asked_push |= q.find("scope=repository%3Atest%2Ftokened%3Apull%2Cpush") != std::string::npos;
  EXPECT_TRUE(asked_push) << tokens.requests().back();
  EXPECT_NE(tokens.requests().back().find("Authorization: Basic dGVzdGVyOnMzY3JldA=="), std::string::npos);
  Result again = push(cache, {"tokened", reg.host() + "/test/tokened:v1"}, {"ENROOT_CONFIG_PATH=" + enroot.string()});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("0 blobs uploaded (0 B), 3 already there"), std::string::npos) << again.err;
}

}  // namespace
