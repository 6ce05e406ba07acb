// --platform and FROM --platform= without a registry: BuildKit's automatic platform ARGs
// (BUILDPLATFORM, TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD* ones),
// and the platform the image config and the layout's index record. The registry side (which
// image of a manifest list is pulled) is in build_registry_test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "build_test_support.hpp"
#include "nemokit/oci/platform.hpp"

using namespace buildtest;
using nlohmann::json;

namespace {

// The image config of a built image, with its index entry's platform under "index_platform".
json built_config(const fs::path& cache, const std::string& tag) {
  auto blob = [&](const json& d) { return cache / "oci" / tag / "blobs/sha256" / d["digest"].get<std::string>().substr(7); };
  json index = json::parse(read_file(cache / "oci" / tag / "index.json"));
  json manifest = json::parse(read_file(blob(index["manifests"][0])));
  json config = json::parse(read_file(blob(manifest["config"])));
  config["index_platform"] = index["manifests"][0]["platform"];
  return config;
}

TEST(BuildPlatform, AutomaticArgsAndTheRecordedPlatform) {
  if (geteuid() != 0) GTEST_SKIP() << "builds need root";
  fs::path dir = scratch_dir("platform-args");
  fs::path cache = dir / "cache";
  const std::string host = nemokit::oci::host_platform().str();
  const std::string host_arch = nemokit::oci::host_platform().architecture;
  write_file(dir / "ctx/Dockerfile",
             "ARG OS_ARCH=$TARGETOS/$TARGETARCH\n"
             "FROM --platform=$BUILDPLATFORM scratch AS tools\n"
             "ARG TARGETARCH\n"
             "LABEL tools.target=$TARGETARCH\n"
             "FROM scratch\n"
             "ARG TARGETPLATFORM\n"
             "ARG TARGETARCH\n"
             "ARG TARGETVARIANT\n"
             "ARG BUILDARCH\n"
             "ARG OS_ARCH\n"
             "LABEL platform=$TARGETPLATFORM arch=$TARGETARCH variant=x$TARGETVARIANT build=$BUILDARCH os_arch=$OS_ARCH\n"
             "ENV UNDECLARED=x$BUILDOS\n");
  auto build = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--tag", "plat"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
  };

  Result r = build({"--platform", "linux/arm/v7"});
  ASSERT_EQ(r.code, 0) << r.err;
  json c = built_config(cache, "plat");
  EXPECT_EQ(c["architecture"], "arm");
  EXPECT_EQ(c["os"], "linux");
  EXPECT_EQ(c["variant"], "v7");
  EXPECT_EQ(c["index_platform"], json({{"architecture", "arm"}, {"os", "linux"}, {"variant", "v7"}}));
  EXPECT_EQ(
      c["config"]["Labels"],
      json({{"platform", "linux/arm/v7"}, {"arch", "arm"}, {"variant", "xv7"}, {"build", host_arch}, {"os_arch", "linux/arm"}}));
  // The automatic ARGs are global: a stage sees only those it declares.
  EXPECT_EQ(c["config"]["Env"][1], "UNDECLARED=x");

  // The stage FROM --platform=$BUILDPLATFORM is this machine's, while TARGETARCH stays the target.
  r = build({"--platform", "linux/arm64", "--target", "tools"});
  ASSERT_EQ(r.code, 0) << r.err;
  c = built_config(cache, "plat");
  EXPECT_EQ(c["architecture"], host_arch);
  EXPECT_EQ(c["index_platform"], nemokit::oci::host_platform().to_json());
  EXPECT_EQ(c["config"]["Labels"], json({{"tools.target", "arm64"}}));

  // Without --platform: this machine's platform, and no variant left from before.
  r = build({});
  ASSERT_EQ(r.code, 0) << r.err;
  c = built_config(cache, "plat");
  EXPECT_EQ(c["architecture"], host_arch);
  EXPECT_FALSE(c.contains("variant"));
  EXPECT_EQ(c["config"]["Labels"]["platform"], host);

  // `nemokit image inspect` shows it.
  r = run({nemokit_binary(), "image", "inspect", "plat"}, {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("platform: " + host + "\n"), std::string::npos) << r.out;

  // An unknown platform is refused before anything is built, naming it.
  r = build({"--platform", "linux/sparc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--platform: unknown platform 'linux/sparc' (known: linux/amd64, linux/arm64"), std::string::npos)
      << r.err;
}

}  // namespace
