// RUN --mount (secret, cache, bind, tmpfs) through the real `nemokit` binary over the Debian
// test base: secrets and cache contents must reach no layer, config, output or log; where
// buildah is installed, the images of the cases it supports are compared with its build.
#include <archive.h>
#include <archive_entry.h>

#include <chrono>

#include "fidelity_fixture.hpp"

using namespace buildtest;

namespace {

// The file's bytes after its compression (gzip, zstd, ...), or "" when it is not compressed.
std::string decompressed(const fs::path& file) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  std::string out;
  struct archive_entry* e;
  if (archive_read_open_filename(a, file.c_str(), 1 << 16) == ARCHIVE_OK && archive_read_next_header(a, &e) == ARCHIVE_OK &&
      archive_filter_count(a) > 1) {
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) out.append(buf, size_t(n));
  }
  archive_read_free(a);
  return out;
}

// The files under `root` (skipping `skip`) whose bytes, as stored or decompressed, hold `needle`.
std::vector<std::string> files_holding(const fs::path& root, const std::string& needle, const fs::path& skip = {}) {
  std::vector<std::string> hits;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (!skip.empty() && it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->is_symlink()) continue;
    std::string raw = read_file(it->path());
    if (raw.find(needle) != std::string::npos || decompressed(it->path()).find(needle) != std::string::npos)
      hits.push_back(it->path().string());
  }
  return hits;
}

std::string unique(const std::string& what) {
  return what + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

class RunMount : public Fidelity {
 protected:
  void SetUp() override {
    Fidelity::SetUp();
    if (IsSkipped()) return;
    if (!use_base()) GTEST_SKIP() << "needs the Debian test base: " << base_missing_;
  }

  // No trace of `needle` in the build's files (layers unpacked and as blobs, the OCI layout,
  // step records, the image config), in the squashfs's files, or in what the build printed.
  void expect_nowhere(const std::string& tag, const std::string& needle, const Result& r, const fs::path& skip = {}) {
    EXPECT_EQ(r.out.find(needle), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(needle), std::string::npos) << r.err;
    for (auto& hit : files_holding(dir_ / "cache", needle, skip)) ADD_FAILURE() << tag << ": found in " << hit;
    SquashfsMount mnt(dir_ / "cache/containers" / (tag + ".sqsh"));
    for (auto& hit : files_holding(mnt.root(), needle)) ADD_FAILURE() << tag << ": found in the image's " << hit;
  }
};

std::string sha256_line(const std::string& content) { return nemokit::rt::Sha256::digest_of(content).substr(7) + "  -\n"; }

TEST_F(RunMount, SecretsReachTheCommandAndNoLayerConfigOrLog) {
  std::string file_secret = unique("file-secret"), env_secret = unique("env-secret");
  write_file(dir_ / "secret.txt", file_secret);
  extra_args_ = {"--secret", "id=tok,src=" + (dir_ / "secret.txt").string()};
  Result r = build(
      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
      "RUN --mount=type=secret,id=tok cat /run/secrets/tok | sha256sum > /tok.sum && "
      "stat -c '%a %u' /run/secrets/tok > /tok.mode\n",
      "secret");
  ASSERT_EQ(r.code, 0) << r.err;
  Image mine = ours("secret");
  EXPECT_EQ(mine.tree["tok.sum"], file_entry("644", "0:0", sha256_line(file_secret)));
  EXPECT_EQ(mine.tree["tok.mode"], file_entry("644", "0:0", "400 0\n"));
  EXPECT_FALSE(mine.tree.count("run/secrets"));
  expect_nowhere("secret", file_secret, r);
  expect_same_as_buildah("secret", mine, {"run/secrets"});

  // From an environment variable, as a file at a chosen target and as a variable.
  extra_args_ = {"--secret", "id=envtok,env=NEMOKIT_TEST_TOKEN"};
  extra_env_ = {"NEMOKIT_TEST_TOKEN=" + env_secret};
  r = build(
      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
      "RUN --mount=type=secret,id=envtok,env=TOKEN,target=/etc/tok printf %s \"$TOKEN\" | sha256sum > /env.sum && "
      "sha256sum < /etc/tok > /file.sum\n",
      "secret-env");
  ASSERT_EQ(r.code, 0) << r.err;
  Image env_image = ours("secret-env");
  EXPECT_EQ(env_image.tree["env.sum"], file_entry("644", "0:0", sha256_line(env_secret)));
  EXPECT_EQ(env_image.tree["file.sum"], file_entry("644", "0:0", sha256_line(env_secret)));
  EXPECT_FALSE(env_image.tree.count("etc/tok"));
  EXPECT_EQ(oci_image("secret-env").config["config"].dump().find("TOKEN"), std::string::npos);
  expect_nowhere("secret-env", env_secret, r);

  // A required secret that is not given stops the build at its line; an optional one is absent.
  extra_args_.clear();
  extra_env_.clear();
  r = build(
      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=secret,id=nope test ! -e /run/secrets/nope\n"
      "RUN --mount=type=secret,id=nope,required true\n",
      "secret-missing");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Dockerfile.secret-missing:4:5: secret nope is required but not given"), std::string::npos) << r.err;
}

TEST_F(RunMount, ACacheMountPersistsBetweenBuildsAndIsInNoLayer) {
  // Written at run time, so that the Dockerfile's text (in the log and the history) does not hold it.
  std::string marker = "CONTENT-OF-THE-CACHE";
  // buildah keeps cache mounts by id outside its store: a fresh id gives both builders an empty cache.
  std::string body = "RUN --mount=type=cache,id=" + unique("tool") +
                     ",target=/root/.cache/tool,sharing=locked "
                     "echo content-of-the-cache | tr a-z A-Z >> /root/.cache/tool/runs && "
                     "wc -l < /root/.cache/tool/runs > /";
  Result r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" + body + "first\n", "cache1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ours("cache1").tree["first"], file_entry("644", "0:0", "1\n"));
  if (has_buildah_) ASSERT_TRUE(buildah("cache1", false));
  r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" + body + "second\n", "cache2");
  ASSERT_EQ(r.code, 0) << r.err;
  Image mine = ours("cache2");
  EXPECT_EQ(mine.tree["second"], file_entry("644", "0:0", "2\n"));  // the first build's line is still there
  EXPECT_FALSE(mine.tree.count("root/.cache"));
  fs::path caches = dir_ / "cache/build/mount-cache";
  EXPECT_EQ(files_holding(caches, marker).size(), 1u);
  expect_nowhere("cache2", marker, r, caches);
  expect_same_as_buildah("cache2", mine, {"root/.cache/tool", "root/.cache"});
}

TEST_F(RunMount, BindAndTmpfsMountsLeaveNothingBehind) {
  write_file(dir_ / "ctx/sub/h.txt", "hello\n");
  write_file(dir_ / "ctx/sub/deep/x.txt", "x\n");
  Result r = build(
      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS tools\nRUN echo tool > /tool.txt\n"
      "FROM ${BASE_IMAGE}\n"
      "RUN --mount=type=bind,source=sub,target=/mnt/ctx cat /mnt/ctx/h.txt > /from-context && "
      "! touch /mnt/ctx/ro-write 2>/dev/null\n"
      "RUN --mount=type=bind,source=sub,target=/mnt/ctx,rw touch /mnt/ctx/dropped && ls /mnt/ctx > /listed\n"
      "RUN --mount=type=bind,from=tools,source=/tool.txt,target=/t cp /t /from-stage\n"
      "RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && grep -q ' /scratch tmpfs' /proc/mounts\n",
      "bind");
  ASSERT_EQ(r.code, 0) << r.err;
  Image mine = ours("bind");
  EXPECT_EQ(mine.tree["from-context"], file_entry("644", "0:0", "hello\n"));
  EXPECT_EQ(mine.tree["listed"], file_entry("644", "0:0", "deep\ndropped\nh.txt\n"));
  EXPECT_EQ(mine.tree["from-stage"], file_entry("644", "0:0", "tool\n"));
  for (auto p : {"mnt/ctx", "t", "scratch"}) EXPECT_FALSE(mine.tree.count(p)) << p;
  EXPECT_FALSE(fs::exists(dir_ / "ctx/sub/dropped"));  // rw writes never reach the context
  expect_same_as_buildah("bind", mine);

  // A changed file under a bound folder reruns the step; the source may not leave the context.
  write_file(dir_ / "ctx/sub/h.txt", "changed\n");
  r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,source=sub,target=/m cat /m/h.txt > /seen\n", "bind2");
  ASSERT_EQ(r.code, 0) << r.err;
  write_file(dir_ / "ctx/sub/h.txt", "again\n");
  r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,source=sub,target=/m cat /m/h.txt > /seen\n", "bind2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ours("bind2").tree["seen"], file_entry("644", "0:0", "again\n"));
  r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=bind,source=../..,target=/m true\n", "escape");
  EXPECT_NE(r.err.find("Dockerfile.escape:3:5: --mount source=../.. leaves the build context"), std::string::npos) << r.err;
  r = build("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN --mount=type=cache,target=/c,size=3 true\n", "badopt");
  EXPECT_NE(r.err.find("Dockerfile.badopt:3:5: --mount=type=cache,target=/c,size=3: 'size' is not an option of type=cache"),
            std::string::npos)
      << r.err;
}

}  // namespace
