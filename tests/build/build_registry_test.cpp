// Registry pulls against Debian's docker-registry started on loopback by the test
// (registry_fixture.hpp), with and without htpasswd (basic) or token auth, and the platform a
// pull picks from a manifest list.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "build_test_support.hpp"
#include "registry_fixture.hpp"

namespace {
using namespace regtest;

class BuildRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "builds need root";
    if (run({"sh", "-c", "command -v docker-registry && command -v htpasswd"}).code != 0)
      GTEST_SKIP() << "docker-registry / htpasswd not installed (scripts/setup-deps.sh)";
  }

  Result build_from(const fs::path& dir, const std::string& ref, const std::vector<std::string>& env) {
    write_file(dir / "ctx/local.txt", "local\n");
    write_file(dir / "ctx/Dockerfile", "FROM " + ref + "\nCOPY local.txt /\n");
    return run({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "pulled"}, env);
  }
};

TEST_F(BuildRegistry, PullsTheAmd64ImageOfAManifestList) {
  fs::path dir = scratch_dir("registry-open");
  Registry reg(dir / "registry", "");
  Pusher(reg.base(), "").push_test_image("test/tiny", "v1");
  fs::path cache = dir / "cache";
  Result r = build_from(dir, reg.host() + "/test/tiny:v1", {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  SquashfsMount mnt(cache / "containers/pulled.sqsh");
  EXPECT_EQ(read_file(mnt.root() / "which.txt"), "amd64 layer\n");
  EXPECT_EQ(read_file(mnt.root() / "local.txt"), "local\n");
  EXPECT_EQ(read_file(mnt.root() / "etc/environment"), "FROM_REGISTRY=amd64\n");
  // Kept by digest: the amd64 manifest, its config and its layer; nothing of
  // the arm64 image was downloaded.
  size_t blobs = 0;
  for (auto& e : fs::directory_iterator(cache / "registry/blobs/sha256")) blobs += e.is_regular_file();
  EXPECT_EQ(blobs, 3u);
  // A missing tag is reported with the registry's answer.
  r = build_from(dir, reg.host() + "/test/tiny:nope", {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/manifests/nope: HTTP 404"), std::string::npos) << r.err;
}

// The image config and the layout's index entry of a built image, as a pull would read them.
json built_config(const fs::path& cache, const std::string& tag) {
  json index = json::parse(read_file(cache / "oci" / tag / "index.json"));
  json manifest =
      json::parse(read_file(cache / "oci" / tag / "blobs/sha256" / index["manifests"][0]["digest"].get<std::string>().substr(7)));
  json config =
      json::parse(read_file(cache / "oci" / tag / "blobs/sha256" / manifest["config"]["digest"].get<std::string>().substr(7)));
  config["index_platform"] = index["manifests"][0]["platform"];
  return config;
}

TEST_F(BuildRegistry, PlatformPicksTheImageOfAManifestList) {
  fs::path dir = scratch_dir("registry-platform");
  Registry reg(dir / "registry", "");
  Pusher(reg.base(), "").push_test_image("test/multi", "v1");
  fs::path cache = dir / "cache";
  const std::vector<std::string> env = {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()};
  write_file(dir / "ctx/local.txt", "local\n");
  write_file(dir / "ctx/Dockerfile", "FROM " + reg.host() + "/test/multi:v1\nCOPY local.txt /\n");
  auto build = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "multi"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, env);
  };

  // --platform linux/arm64: the arm64 image of the list, and a config that says so.
  Result r = build({"--platform", "linux/arm64"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("(linux/arm64)"), std::string::npos) << r.err;
  {
    SquashfsMount mnt(cache / "containers/multi.sqsh");
    EXPECT_EQ(read_file(mnt.root() / "which.txt"), "arm64 layer\n");
    EXPECT_EQ(read_file(mnt.root() / "etc/environment"), "FROM_REGISTRY=arm64\n");
  }
  json config = built_config(cache, "multi");
  EXPECT_EQ(config["architecture"], "arm64");
  EXPECT_EQ(config["os"], "linux");
  EXPECT_EQ(config["index_platform"], json({{"architecture", "arm64"}, {"os", "linux"}}));

  // The default is this machine's platform (amd64 here): the other image, from its own cache.
  r = build({});
  ASSERT_EQ(r.code, 0) << r.err;
  {
    SquashfsMount mnt(cache / "containers/multi.sqsh");
    EXPECT_EQ(read_file(mnt.root() / "which.txt"), "amd64 layer\n");
  }
  EXPECT_EQ(built_config(cache, "multi")["architecture"], "amd64");
  fs::path pulled = cache / "registry/images" / ("127.0.0.1_" + reg.host().substr(10)) / "test_multi/v1";
  EXPECT_TRUE(fs::exists(pulled / "linux_arm64/index.json")) << pulled;
  EXPECT_TRUE(fs::exists(pulled / "linux_amd64/index.json")) << pulled;

  // FROM --platform= in the Dockerfile, spelled through the automatic ARGs; the kernel's name
  // for the architecture is taken too.
  write_file(dir / "ctx/Dockerfile", "ARG WANT=linux/arm64\nFROM --platform=$WANT " + reg.host() + "/test/multi:v1\n");
  r = build({});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(built_config(cache, "multi")["architecture"], "arm64");
  write_file(dir / "ctx/Dockerfile", "FROM --platform=$TARGETPLATFORM " + reg.host() + "/test/multi:v1\n");
  r = build({"--platform", "aarch64"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(built_config(cache, "multi")["architecture"], "arm64");

  // A platform the list lacks, and one nobody knows, are named.
  r = build({"--platform", "linux/ppc64le"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no linux/ppc64le image in the manifest list (it has linux/arm64, linux/amd64)"), std::string::npos)
      << r.err;
  r = build({"--platform", "linux/mips"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--platform: unknown platform 'linux/mips' (known: linux/amd64, linux/arm64"), std::string::npos) << r.err;
  write_file(dir / "ctx/Dockerfile", "FROM scratch\nFROM --platform=windows/amd64 scratch\n");
  r = build({});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile:2:6: FROM --platform=windows/amd64: unknown platform 'windows/amd64'"), std::string::npos)
      << r.err;
}

TEST_F(BuildRegistry, AnImageOfOnePlatformIsNotTakenForAnother) {
  fs::path dir = scratch_dir("registry-one-platform");
  Registry reg(dir / "registry", "");
  auto arm = Pusher(reg.base(), "").image("test/armonly", "arm64", "which.txt", "arm64 layer\n");
  fs::path cache = dir / "cache";
  const std::vector<std::string> env = {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()};
  // Asked by digest: a lone manifest, whose platform only its config tells.
  const std::string ref = reg.host() + "/test/armonly@" + arm.first;
  Result r = build_from(dir, ref, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a linux/arm64 image, not linux/amd64"), std::string::npos) << r.err;
  write_file(dir / "ctx/Dockerfile", "FROM " + ref + "\nCOPY local.txt /\n");
  r = run({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "armonly", "--platform", "linux/arm64"},
          env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(built_config(cache, "armonly")["architecture"], "arm64");

  // RUN in an arm64 stage on this amd64 machine: said at the RUN line, unless an emulator is
  // registered with binfmt_misc (qemu-user-static), when the command runs and fails in the
  // image (which has no shell).
  write_file(dir / "ctx/Dockerfile", "FROM " + ref + "\nRUN true\n");
  r = run({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "armrun", "--platform", "linux/arm64"},
          env);
  EXPECT_EQ(r.code, 1);
  utsname host{};
  uname(&host);
  if (std::string(host.machine) == "x86_64" && !fs::exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"))
    EXPECT_NE(r.err.find("Dockerfile:2:1: RUN: this machine (linux/amd64) cannot run linux/arm64 programs: "), std::string::npos)
        << r.err;
}

TEST_F(BuildRegistry, BasicAuthWithTheEnrootCredentialsFile) {
  fs::path dir = scratch_dir("registry-auth");
  Registry reg(dir / "registry", "htpasswd");
  Pusher(reg.base(), "Basic dGVzdGVyOnMzY3JldA==").push_test_image("test/private", "v2");  // tester:s3cret
  fs::path cache = dir / "cache";
  fs::path enroot = dir / "enroot";
  std::vector<std::string> env = {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string(), "ENROOT_CONFIG_PATH=" + enroot.string()};
  Result r = build_from(dir, reg.host() + "/test/private:v2", env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("asks for a login: add \"machine " + reg.host()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((enroot / ".credentials").string()), std::string::npos) << r.err;

  write_file(enroot / ".credentials", "machine 127.0.0.1 login tester password wrong\n");
  r = build_from(dir, reg.host() + "/test/private:v2", env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("HTTP 401"), std::string::npos) << r.err;

  write_file(enroot / ".credentials", "machine " + reg.host() + " login tester password s3cret\n");
  r = build_from(dir, reg.host() + "/test/private:v2", env);
  ASSERT_EQ(r.code, 0) << r.err;
  SquashfsMount mnt(cache / "containers/pulled.sqsh");
  EXPECT_EQ(read_file(mnt.root() / "which.txt"), "amd64 layer\n");
}

TEST_F(BuildRegistry, BearerTokenFromTheChallengesRealm) {
  if (run({"sh", "-c", "command -v openssl"}).code != 0) GTEST_SKIP() << "openssl not installed";
  fs::path dir = scratch_dir("registry-token");
  fs::create_directories(dir / "registry");
  TokenServer tokens(dir / "registry");
  Registry reg(dir / "registry", tokens.realm());
  Pusher(reg.base(), "Bearer " + tokens.token()).push_test_image("test/tokened", "v3");
  fs::path cache = dir / "cache";
  fs::path enroot = dir / "enroot";
  write_file(enroot / ".credentials", "machine " + reg.host() + " login tester password s3cret\n");
  size_t before = tokens.requests().size();
  Result r = build_from(dir, reg.host() + "/test/tokened:v3",
                        {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string(), "ENROOT_CONFIG_PATH=" + enroot.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  SquashfsMount mnt(cache / "containers/pulled.sqsh");
  EXPECT_EQ(read_file(mnt.root() / "which.txt"), "amd64 layer\n");
  // The token was asked for with the challenge's service and scope, with the
  // credentials from the enroot file as basic auth.
  auto asked = tokens.requests();
  ASSERT_GT(asked.size(), before);
  const std::string& q = asked.back();
  EXPECT_NE(q.find("GET /token?service=nemokit-test-registry&scope=repository%3Atest%2Ftokened%3Apull"), std::string::npos) << q;
  EXPECT_NE(q.find("Authorization: Basic dGVzdGVyOnMzY3JldA=="), std::string::npos) << q;
}

}  // namespace
