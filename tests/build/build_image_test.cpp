// Whole builds through the real `nemokit` binary: the multi-stage Dockerfile in
// multistage/ compiles a C program on a Debian base (make_test_base.sh) and
// ships it in a second stage; `nemokit exec` runs the result. The image's tree
// is compared with the base's own files plus exactly what the Dockerfile
// changes. Needs root (overlayfs, namespaces, loop mounts); skipped otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "build_test_support.hpp"
#include "support/process.hpp"
#include "nemokit/dockerfile/layer_store.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/runtime/sha256.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace buildtest;

namespace {

struct Built {
  fs::path dir, context, cache;
  Result result;
};

class BuildImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "builds need root (mounts and namespaces)";
    base_ = test_base_dir();
  }

  std::vector<std::string> env(const fs::path& cache) { return {"NEMOKIT_BUILD_CACHE_DIR=" + cache.string()}; }

  // The multistage context copied next to a bundle.tar.gz made with tar.
  fs::path multistage_context(const fs::path& dir) {
    fs::path ctx = dir / "ctx";
    fs::copy(fs::path(NEMOKIT_SOURCE_DIR) / "tests/build/multistage", ctx,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    write_file(dir / "bundle/readme.txt", "from a tar\n");
    write_file(dir / "bundle/bin/tool", "#!/bin/sh\necho tool\n");
    fs::permissions(dir / "bundle/bin/tool", fs::perms(0755));
    Result t = run({"tar", "--owner=7", "--group=8", "-C", (dir / "bundle").string(), "-czf", (ctx / "bundle.tar.gz").string(),
                    "readme.txt", "bin"});
    EXPECT_EQ(t.code, 0) << t.err;
    return ctx;
  }

  Result build(const fs::path& dockerfile, const fs::path& ctx, const fs::path& cache, const std::string& tag,
               std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        nemokit_binary(), "build", "-f", dockerfile.string(), "--context",
        ctx.string(),     "--tag", tag,  "--build-arg",       "BASE_IMAGE=docker-archive:" + (base_ / "base.tar").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run(argv, env(cache));
  }

  fs::path base_;
};

TEST_F(BuildImage, MultiStageBuildRunsWithExecAndMatchesTheExpectedTree) {
  fs::path dir = scratch_dir("multistage");
  fs::path ctx = multistage_context(dir);
  fs::path cache = dir / "cache";
  Result b = build(ctx / "Dockerfile", ctx, cache, "multistage");
  ASSERT_EQ(b.code, 0) << b.err;
  // RUN output streams with the step's prefix.
  EXPECT_NE(b.err.find("\n[compile 5/6] | (no GREETING) from uid 0 in /src\n"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("\n[compile 5/6] | arg: check\n"), std::string::npos);
  fs::path sqsh = cache / "containers" / "multistage.sqsh";
  ASSERT_TRUE(fs::exists(sqsh));

  // exec: enroot's rc applies WORKDIR, ENTRYPOINT + CMD and /etc/environment;
  // like enroot it runs as the caller (root here), while RUN ran as USER app.
  Result e = run({nemokit_binary(), "exec", "multistage"}, env(cache));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "hello from nemokit from uid 0 in /home/app/work\narg: default-arg\nbuilt by: app\n");
  write_file(dir / "shared/note", "mounted note\n");
  e = run({nemokit_binary(), "exec", sqsh.string(), "--mount", (dir / "shared").string() + ":/mnt/shared:ro", "--env",
           "SHOW=/mnt/shared/note", "--", "one", "two words"},
          env(cache));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out,
            "hello from nemokit from uid 0 in /home/app/work\narg: one\narg: two words\nbuilt by: app\n"
            "shown: mounted note\n");

  // The OCI image config.
  auto image = nemokit::oci::open_image("oci:" + (cache / "oci" / "multistage").string() + ":multistage");
  const auto& c = image.config["config"];
  EXPECT_EQ(c["User"], "app");
  EXPECT_EQ(c["WorkingDir"], "/home/app/work");
  EXPECT_EQ(c["Entrypoint"], nlohmann::json({"/usr/local/bin/hello"}));
  EXPECT_EQ(c["Cmd"], nlohmann::json({"default-arg"}));
  EXPECT_EQ(c["Labels"]["org.example.test"], "multistage");
  EXPECT_EQ(c["Labels"]["org.example.base"], "docker-archive:" + (base_ / "base.tar").string());
  EXPECT_TRUE(c["ExposedPorts"].contains("8080/tcp"));
  std::vector<std::string> envs = c["Env"];
  EXPECT_NE(std::find(envs.begin(), envs.end(), "GREETING=hello from nemokit"), envs.end());
  EXPECT_EQ(envs.at(0).rfind("PATH=", 0), 0u);  // inherited from the base
  // Base layer + RUN + 3 COPY + ADD + WORKDIR + RUN; history holds the config-only steps too.
  EXPECT_EQ(image.layers.size(), 8u);
  EXPECT_EQ(image.config["rootfs"]["diff_ids"].size(), 8u);
  EXPECT_EQ(image.config["history"].size(), 1u + 13u);

  // The tree: the base's files plus what the Dockerfile does, nothing else
  // (no /etc/hosts or /etc/resolv.conf left over from RUN's mounts, no
  // .dockerignore'd file, the deleted file gone through a whiteout).
  auto expected = tree_listing(base_ / "rootfs");
  auto dir_entry = [](const std::string& owner) { return "d 755 " + owner; };
  auto file_entry = [](const std::string& mode, const std::string& owner, const std::string& content) {
    return "f " + mode + " " + owner + " " + nemokit::rt::Sha256::digest_of(content);
  };
  expected.erase("usr/bin/uname");
  expected["opt"] = dir_entry("0:0");
  expected["opt/data"] = dir_entry("0:0");
  expected["opt/data/file"] = file_entry("644", "0:0", "data\n");
  expected["usr/local"] = dir_entry("0:0");
  expected["usr/local/bin"] = dir_entry("0:0");
  expected["home/app/build-info"] = file_entry("644", "1000:1000", "compiled with -O2\n");
  expected["opt/assets"] = dir_entry("0:0");
  expected["opt/assets/a.txt"] = file_entry("644", "0:0", "alpha\n");
  expected["opt/assets/link-to-a"] = "l 777 0:0 -> a.txt";
  expected["opt/assets/sub"] = dir_entry("0:0");
  expected["opt/assets/sub/b.txt"] = file_entry("644", "0:0", "beta\n");
  expected["opt/unpacked"] = dir_entry("0:0");
  expected["opt/unpacked/readme.txt"] = file_entry("644", "7:8", "from a tar\n");
  expected["opt/unpacked/bin"] = dir_entry("7:8");
  expected["opt/unpacked/bin/tool"] = file_entry("755", "7:8", "#!/bin/sh\necho tool\n");
  expected["home/app/work"] = dir_entry("1000:1000");
  expected["home/app/work/whoami"] = file_entry("644", "1000:1000", "app\n");
  // What enroot needs, written by the squashfs step.
  for (auto f : {"etc/rc", "etc/rc.local", "etc/environment", "etc/fstab"}) expected[f] = "(enroot)";

  SquashfsMount mnt(sqsh);
  auto actual = tree_listing(mnt.root());
  // The compiled binary's bytes are not known in advance; its metadata is.
  ASSERT_TRUE(actual.count("usr/local/bin/hello"));
  EXPECT_EQ(actual["usr/local/bin/hello"].substr(0, 10), "f 755 0:0 ");
  expected["usr/local/bin/hello"] = actual["usr/local/bin/hello"];
  for (auto f : {"etc/rc", "etc/rc.local", "etc/environment", "etc/fstab"})
    if (actual.count(f)) actual[f] = "(enroot)";
  actual.erase("");
  expected.erase("");
  for (auto& [path, what] : expected) {
    auto it = actual.find(path);
    if (it == actual.end())
      ADD_FAILURE() << "missing from the image: " << path << " (" << what << ")";
    else
      EXPECT_EQ(it->second, what) << path;
  }
  for (auto& [path, what] : actual)
    if (!expected.count(path)) ADD_FAILURE() << "unexpected in the image: " << path << " (" << what << ")";
  EXPECT_NE(read_file(mnt.root() / "etc/environment").find("GREETING=hello from nemokit\n"), std::string::npos);
}

TEST_F(BuildImage, UnchangedRebuildDoesNoWorkAndChangesRebuildFromThere) {
  fs::path dir = scratch_dir("rebuild");
  fs::path ctx = multistage_context(dir);
  fs::path cache = dir / "cache";
  Result first = build(ctx / "Dockerfile", ctx, cache, "again");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("built again: 11 steps run, 0 cached"), std::string::npos) << first.err;
  auto digest_of = [](const std::string& err) { return err.substr(err.rfind("image sha256:")); };
  fs::path sqsh = cache / "containers" / "again.sqsh";
  auto mtime = fs::last_write_time(sqsh);

  Result second = build(ctx / "Dockerfile", ctx, cache, "again");
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find("built again: 0 steps run, 11 cached"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("is up to date"), std::string::npos);
  EXPECT_EQ(digest_of(first.err), digest_of(second.err));
  EXPECT_EQ(fs::last_write_time(sqsh), mtime);

  // A changed context file reruns its COPY and everything after it.
  write_file(ctx / "assets/a.txt", "changed\n");
  Result third = build(ctx / "Dockerfile", ctx, cache, "again");
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_NE(third.err.find("built again: 4 steps run, 7 cached"), std::string::npos) << third.err;
  // A .dockerignore'd file changes nothing.
  write_file(ctx / "assets/ignored.log", "more noise\n");
  Result fourth = build(ctx / "Dockerfile", ctx, cache, "again");
  EXPECT_NE(fourth.err.find("built again: 0 steps run, 11 cached"), std::string::npos) << fourth.err;
  // A build argument reaches the RUN steps' cache keys; the final stage's
  // COPY --from steps follow the compile stage's new layers.
  Result fifth = build(ctx / "Dockerfile", ctx, cache, "again", {"--build-arg", "OPT=-O0"});
  EXPECT_NE(fifth.err.find("built again: 8 steps run, 3 cached"), std::string::npos) << fifth.err;
  Result nocache = build(ctx / "Dockerfile", ctx, cache, "again", {"--no-cache"});
  EXPECT_NE(nocache.err.find("built again: 11 steps run, 0 cached"), std::string::npos) << nocache.err;

  // Every new squashfs above took the base's compressed blocks from the block cache. Where base
  // layers are squashfs files (root with loop devices) the first build's base layer put them
  // there; unpacked, the first image compressed them all. The later ones found most of them.
  auto blocks = [](const std::string& err) {
    size_t at = err.rfind(" blocks from the block cache");
    size_t of = err.rfind(" of ", at);
    size_t start = err.rfind(", ", of) + 2;
    return std::pair{std::stoull(err.substr(start, of - start)), std::stoull(err.substr(of + 4, at - of - 4))};
  };
  ASSERT_NE(first.err.find(" blocks from the block cache"), std::string::npos) << first.err;
  if (nemokit::dockerfile::base_layer_form() == nemokit::dockerfile::BaseLayerForm::squashfs)
    EXPECT_GT(blocks(first.err).first, blocks(first.err).second / 2) << first.err;
  else
    EXPECT_EQ(blocks(first.err).first, 0u) << first.err;
  auto [cached, total] = blocks(nocache.err);
  EXPECT_GT(cached, total / 2) << nocache.err;
  EXPECT_EQ(blocks(third.err).second, blocks(first.err).second) << third.err;

  // The cache's cap comes from the environment, checked before any step.
  std::vector<std::string> bad_cap = env(cache);
  bad_cap.push_back("NEMOKIT_SQUASHFS_CACHE_MB=lots");
  Result bad = run({nemokit_binary(), "build", "-f", (ctx / "Dockerfile").string(), "--context", ctx.string(), "--tag",
                    "again", "--build-arg", "BASE_IMAGE=docker-archive:" + (base_ / "base.tar").string()},
                   bad_cap);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("NEMOKIT_SQUASHFS_CACHE_MB: 'lots' is not a size in MiB"), std::string::npos) << bad.err;
}

// Base layers are squashfs files where loop devices are usable (root), mounted in the build's own
// mount namespace: the store holds the base's layer as one file, nothing of it stays mounted
// after the build, and the image is the one unpacked base layers give. A layer file that does not
// mount is unpacked from its blob instead, with a warning.
TEST_F(BuildImage, BaseLayersAreSquashfsFilesMountedForTheBuild) {
  using nemokit::dockerfile::BaseLayerForm;
  if (nemokit::dockerfile::base_layer_form() != BaseLayerForm::squashfs)
    GTEST_SKIP() << "no usable loop devices here: base layers are unpacked";
  fs::path dir = scratch_dir("base-layers");
  write_file(dir / "ctx/Dockerfile",
             "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
             "RUN test -x /bin/sh && rm /etc/debian_version && head -1 /etc/os-release > /os && mkdir -p /usr/share/doc/new\n");
  auto build_with = [&](const fs::path& cache, std::vector<std::string> extra_env, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--context",
                                     (dir / "ctx").string(), "--tag", "img", "--build-arg",
                                     "BASE_IMAGE=docker-archive:" + (base_ / "base.tar").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    extra_env.push_back("NEMOKIT_BUILD_CACHE_DIR=" + cache.string());
    return run(argv, extra_env);
  };
  fs::path squashed = dir / "squashfs-cache", unpacked = dir / "folder-cache";
  Result a = build_with(squashed, {});
  ASSERT_EQ(a.code, 0) << a.err;
  Result b = build_with(unpacked, {"NEMOKIT_BASE_LAYERS=folders"});
  ASSERT_EQ(b.code, 0) << b.err;

  std::vector<fs::path> files, folders;
  for (auto& e : fs::directory_iterator(squashed / "build" / "layers"))
    (e.path().extension() == ".sqsh" ? files : folders).push_back(e.path());
  ASSERT_EQ(files.size(), 1u);  // the base's one layer
  EXPECT_EQ(folders.size(), 1u);  // the RUN step's
  EXPECT_FALSE(fs::exists(files[0].parent_path() / files[0].stem()));
  std::string mounts = read_file("/proc/self/mountinfo");
  EXPECT_EQ(mounts.find(squashed.string()), std::string::npos) << mounts;
  EXPECT_TRUE(fs::is_empty(squashed / "build" / "tmp"));
  {
    SquashfsMount x(squashed / "containers" / "img.sqsh"), y(unpacked / "containers" / "img.sqsh");
    auto with_file = tree_listing(x.root()), with_folders = tree_listing(y.root());
    EXPECT_EQ(with_file, with_folders);
    EXPECT_FALSE(with_file.count("etc/debian_version"));
    EXPECT_TRUE(with_file.count("usr/share/doc/new"));
  }

  // A damaged layer file (its super block) is unpacked from the blob the store keeps.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.write("\0\0\0\0", 4);
  }
  Result c = build_with(squashed, {}, {"--no-cache"});
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("warning: mounting " + files[0].string()), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("unpacking the layer instead"), std::string::npos) << c.err;
  EXPECT_TRUE(fs::is_directory(files[0].parent_path() / files[0].stem()));

  Result bad = build_with(squashed, {"NEMOKIT_BASE_LAYERS=zip"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("NEMOKIT_BASE_LAYERS: 'zip' is neither squashfs"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("[stage-0 1/2]"), std::string::npos) << bad.err;
}

// A Ctrl-C (or a scheduler's SIGTERM) that reaches nemokit alone, not its process group: the build
// nemokit runs in a child process gets it too, so the RUN step stops at once, nothing of the
// build stays running or mounted, and nemokit says how the build ended.
TEST_F(BuildImage, InterruptStopsTheBuildAndLeavesNothingRunningOrMounted) {
  fs::path dir = scratch_dir("interrupt");
  fs::path cache = dir / "cache";
  write_file(dir / "ctx/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo started && exec sleep 5417\n");
  nemokit::test::RunOptions opt;
  opt.env["NEMOKIT_BUILD_CACHE_DIR"] = cache.string();
  nemokit::test::Process p({nemokit_binary(), "build", "-f", (dir / "ctx/Dockerfile").string(), "--context",
                            (dir / "ctx").string(), "--tag", "interrupted", "--build-arg",
                            "BASE_IMAGE=docker-archive:" + (base_ / "base.tar").string()},
                           opt);
  ASSERT_TRUE(p.wait_for_output([](const std::string& s) { return s.find("| started") != std::string::npos; }, 120))
      << p.err_so_far();
  ASSERT_EQ(kill(p.pid(), SIGINT), 0);
  nemokit::test::RunResult r = p.wait(30);
  ASSERT_NE(r.exit_code, -2) << "still running 30 s after SIGINT: " << r.err;
  EXPECT_NE(r.exit_code, 0);
  // With base layers mounted the build runs in a child, and nemokit says how it ended (else the
  // signal ends nemokit itself).
  if (nemokit::dockerfile::base_layer_form() == nemokit::dockerfile::BaseLayerForm::squashfs)
    EXPECT_NE(r.err.find("nemokit build: killed by signal 2"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cache / "containers" / "interrupted.sqsh"));
  std::string mounts = read_file("/proc/self/mountinfo");
  EXPECT_EQ(mounts.find(cache.string()), std::string::npos) << mounts;
  // The step's command is gone with it (it runs in a PID namespace whose init dies with the build).
  for (int tries = 0; tries < 50; ++tries) {
    bool left = false;
    for (auto& e : fs::directory_iterator("/proc")) {
      std::string cmd = read_file(e.path() / "cmdline");
      if (cmd == std::string("sleep\0005417\0", 11)) left = true;
    }
    if (!left) break;
    usleep(100 * 1000);
    ASSERT_LT(tries, 49) << "the RUN step's sleep outlived the build";
  }
}

TEST_F(BuildImage, FailuresNameTheLine) {
  fs::path dir = scratch_dir("failures");
  fs::path cache = dir / "cache";
  write_file(dir / "ctx/file.txt", "x\n");
  write_file(dir / "secret.txt", "outside\n");
  fs::create_symlink("../secret.txt", dir / "ctx/escape");

  write_file(dir / "ctx/Dockerfile.run", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n\nRUN echo before && exit 3\n");
  Result r = build(dir / "ctx/Dockerfile.run", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("\n[stage-0 2/2] | before\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\nnemokit build: " + (dir / "ctx").string() +
                       "/Dockerfile.run:4:1: RUN echo before && exit 3: the command failed with exit code 3\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("nemokit build: nemokit build"), std::string::npos) << r.err;  // said once, however it ran
  EXPECT_FALSE(fs::exists(cache / "containers" / "fails.sqsh"));

  // A bare base name never built here: whatever Docker Hub answers (here: no such host), the
  // error says how to build the base locally.
  write_file(dir / "ctx/Dockerfile.nobase", "FROM nemokit-never-built\nRUN true\n");
  r = build(dir / "ctx/Dockerfile.nobase", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile.nobase:1:6: FROM nemokit-never-built: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no image nemokit-never-built was built into " + (cache / "oci").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--tag nemokit-base"), std::string::npos) << r.err;

  write_file(dir / "ctx/Dockerfile.syntax", "FROM scratch\nCOPY file.txt /\n  RUNN echo\n");
  r = build(dir / "ctx/Dockerfile.syntax", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile.syntax:3:3: unknown instruction 'RUNN'"), std::string::npos) << r.err;

  write_file(dir / "ctx/Dockerfile.outside", "FROM scratch\nCOPY ../secret.txt /\n");
  r = build(dir / "ctx/Dockerfile.outside", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile.outside:2:6: ../secret.txt: forbidden path outside the build context"), std::string::npos)
      << r.err;
  // A symlink in the context is followed inside the context only.
  write_file(dir / "ctx/Dockerfile.link", "FROM scratch\nCOPY escape /\n");
  r = build(dir / "ctx/Dockerfile.link", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("escape"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("outside\n"), std::string::npos);

  // Nothing listens on port 1 of loopback: the fetch fails at once, named at its line, with
  // curl's reason, on a machine with or without a network.
  write_file(dir / "ctx/Dockerfile.url", "FROM scratch\nADD http://127.0.0.1:1/x.tar /\n");
  r = build(dir / "ctx/Dockerfile.url", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile.url:2:1: ADD http://127.0.0.1:1/x.tar: "), std::string::npos) << r.err;

  write_file(dir / "ctx/Dockerfile.user", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nUSER nosuchuser\nRUN true\n");
  r = build(dir / "ctx/Dockerfile.user", dir / "ctx", cache, "fails");
  EXPECT_NE(r.err.find("unable to find user nosuchuser"), std::string::npos) << r.err;

  // Found by mutating inputs: each once failed with a library's raw message (stoul, substr,
  // nlohmann's UTF-8 check after the whole build) instead of the line.
  std::string all_errors;
  write_file(dir / "ctx/Dockerfile.uid", "FROM scratch\nCOPY file.txt /\nUSER 99999999999999999999\nCOPY file.txt /b\n");
  r = build(dir / "ctx/Dockerfile.uid", dir / "ctx", cache, "fails");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Dockerfile.uid:3:6: USER 99999999999999999999: user id 99999999999999999999 is out of range"),
            std::string::npos)
      << r.err;
  all_errors += r.err;
  write_file(dir / "ctx/Dockerfile.backslash", "FROM scratch\nCOPY file.txt /\n\\");
  r = build(dir / "ctx/Dockerfile.backslash", dir / "ctx", cache, "fails");
  EXPECT_NE(r.err.find("Dockerfile.backslash:3:1: line continuation '\\' with no instruction after it"), std::string::npos)
      << r.err;
  all_errors += r.err;
  write_file(dir / "ctx/Dockerfile.utf8", "FROM scratch\nCOPY file.txt /\nVOLUME [\"/d\xff\"]\n");
  r = build(dir / "ctx/Dockerfile.utf8", dir / "ctx", cache, "fails");
  EXPECT_NE(r.err.find("Dockerfile.utf8:3:12: invalid UTF-8"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("[stage-0"), std::string::npos) << "fails before any step: " << r.err;
  all_errors += r.err;
  write_file(dir / "ctx/Dockerfile.health", "FROM scratch\nCOPY file.txt /\nHEALTHCHECK CMD [\"/bin/x\", 1]\n");
  r = build(dir / "ctx/Dockerfile.health", dir / "ctx", cache, "fails");
  EXPECT_NE(r.err.find("Dockerfile.health:3:17: HEALTHCHECK: a JSON array must hold only strings, not 1"), std::string::npos)
      << r.err;
  all_errors += r.err;
  for (const std::string& raw : {"basic_string", "stoul", "json.exception", "std::"})
    EXPECT_EQ(all_errors.find(raw), std::string::npos) << all_errors;
}

// COPY to a destination 1,000 folders deep took 72 s (every level re-resolved from the root);
// it now takes about a second, well inside ctest's timeout.
TEST_F(BuildImage, CopyIntoADeepDestination) {
  fs::path dir = scratch_dir("deep");
  write_file(dir / "ctx/a.txt", "deep\n");
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "/d";
  write_file(dir / "ctx/Dockerfile", "FROM scratch\nCOPY a.txt " + deep + "/\n");
  Result r = build(dir / "ctx/Dockerfile", dir / "ctx", dir / "cache", "deep");
  ASSERT_EQ(r.code, 0) << r.err.substr(0, 2000);
  SquashfsMount mnt(dir / "cache/containers/deep.sqsh");
  EXPECT_EQ(read_file(mnt.root().string() + deep + "/a.txt"), "deep\n");
}

TEST_F(BuildImage, ScratchImageWithTargetAndArchives) {
  fs::path dir = scratch_dir("scratch");
  fs::path cache = dir / "cache";
  write_file(dir / "ctx/a.txt", "A\n");
  write_file(dir / "ctx/b.txt", "B\n");
  write_file(dir / "ctx/Dockerfile",
             "FROM scratch AS first\nCOPY *.txt /data/\nCOPY <<EOF /data/here.txt\nheredoc text\nEOF\n"
             "ENV X=1\n"
             "FROM first AS second\nCOPY --chmod=600 a.txt /data/a.txt\n"
             "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD [\"/bin/check\", \"-q\"]\n"
             "STOPSIGNAL SIGINT\nVOLUME /data /cache\n");
  Result r = build(dir / "ctx/Dockerfile", dir / "ctx", cache, "scr",
                   {"--target", "first", "--output", "docker-archive:" + (dir / "out.tar").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("[second"), std::string::npos) << "stages after --target are not built";
  // The archive reads back through the image reader and matches the layout.
  auto from_archive = nemokit::oci::open_image("docker-archive:" + (dir / "out.tar").string());
  auto from_layout = nemokit::oci::open_image("oci:" + (cache / "oci/scr").string() + ":scr");
  EXPECT_EQ(from_archive.config_digest, from_layout.config_digest);
  EXPECT_EQ(from_archive.layers.size(), 2u);
  SquashfsMount mnt(cache / "containers/scr.sqsh");
  EXPECT_EQ(read_file(mnt.root() / "data/a.txt"), "A\n");
  EXPECT_EQ(read_file(mnt.root() / "data/b.txt"), "B\n");
  EXPECT_EQ(read_file(mnt.root() / "data/here.txt"), "heredoc text\n");

  r = build(dir / "ctx/Dockerfile", dir / "ctx", cache, "scr2", {"--output", "oci-archive:" + (dir / "oci.tar").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  auto oci = nemokit::oci::open_image("oci-archive:" + (dir / "oci.tar").string());
  EXPECT_EQ(oci.layers.size(), 3u);
  const auto& c = oci.config["config"];
  EXPECT_EQ(
      c["Healthcheck"],
      nlohmann::json::parse(R"({"Test":["CMD","/bin/check","-q"],"Interval":90000000000,"Timeout":500000000,"Retries":3})"));
  EXPECT_EQ(c["StopSignal"], "SIGINT");
  EXPECT_TRUE(c["Volumes"].contains("/data") && c["Volumes"].contains("/cache"));
  EXPECT_EQ(c["Env"], nlohmann::json({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "X=1"}));
  SquashfsMount mnt2(cache / "containers/scr2.sqsh");
  auto listing = tree_listing(mnt2.root());
  EXPECT_EQ(listing["data/a.txt"], "f 600 0:0 " + nemokit::rt::Sha256::digest_of("A\n"));
}

}  // namespace

namespace {

// `nemokit build omni3-sft`: the Dockerfile comes from the stage plugin, and its
// `FROM ${BASE_IMAGE}` (nemokit-base) is the image built here under that tag.
TEST_F(BuildImage, StageImageBuildsFromTheLocallyBuiltBase) {
  fs::path dir = scratch_dir("stage");
  fs::path cache = dir / "cache";
  write_file(dir / "ctx/Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nENV BASE_MARK=from-local-base\n");
  Result r = build(dir / "ctx/Dockerfile", dir / "ctx", cache, "nemokit-base");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run({nemokit_binary(), "build", "omni3-sft"}, env(cache));
  ASSERT_EQ(r.code, 0) << r.err;
  auto image = nemokit::oci::open_image("oci:" + (cache / "oci/omni3-sft").string() + ":omni3-sft");
  const auto& c = image.config["config"];
  EXPECT_EQ(c["Entrypoint"], nlohmann::json({"nemokit"}));
  EXPECT_EQ(c["WorkingDir"], "/workspace");
  std::vector<std::string> envs = c["Env"];
  for (auto want : {"BASE_MARK=from-local-base", "NEMOKIT_STAGE=sft", "NEMOKIT_FAMILY=omni3"})
    EXPECT_NE(std::find(envs.begin(), envs.end(), want), envs.end()) << want;
  EXPECT_TRUE(fs::exists(cache / "containers/omni3-sft.sqsh"));
  SquashfsMount mnt(cache / "containers/omni3-sft.sqsh");
  EXPECT_TRUE(fs::is_directory(mnt.root() / "workspace"));
  EXPECT_NE(read_file(mnt.root() / "etc/rc").find("exec 'nemokit' \"$@\""), std::string::npos);
}

}  // namespace

namespace {

// What a RUN step sees: its own PID namespace and hostname, /sys read-only,
// the network shared unless --network=none, ARGs in the environment.
TEST_F(BuildImage, RunStepsAreSandboxed) {
  fs::path dir = scratch_dir("sandbox");
  fs::path cache = dir / "cache";
  write_file(dir / "ctx/Dockerfile",
             "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG MESSAGE=unset\n"
             "RUN echo \"$MESSAGE\" > /message && cat /proc/1/cmdline > /pid1 && ls /proc > /procs\n"
             "RUN cat /proc/net/dev > /net-host\n"
             "RUN --network=none cat /proc/net/dev > /net-none\n"
             "RUN if echo x > /sys/x 2>/dev/null; then echo writable; else echo read-only; fi > /sys-state\n"
             "RUN ls -A /dev > /dev-list\n");
  Result r = build(dir / "ctx/Dockerfile", dir / "ctx", cache, "sandbox", {"--build-arg", "MESSAGE=from build arg"});
  ASSERT_EQ(r.code, 0) << r.err;
  SquashfsMount mnt(cache / "containers/sandbox.sqsh");
  EXPECT_EQ(read_file(mnt.root() / "message"), "from build arg\n");
  // PID 1 is the sandbox's own init (this binary), and few processes exist.
  EXPECT_NE(read_file(mnt.root() / "pid1").find("nemokit"), std::string::npos) << read_file(mnt.root() / "pid1");
  size_t pids = 0;
  std::istringstream procs(read_file(mnt.root() / "procs"));
  for (std::string line; std::getline(procs, line);) pids += line.find_first_not_of("0123456789") == std::string::npos;
  EXPECT_LE(pids, 4u);
  auto interfaces = [](const std::string& dev) {
    size_t n = 0;
    for (size_t p = dev.find(':'); p != std::string::npos; p = dev.find(':', p + 1)) ++n;
    return n;
  };
  std::string none = read_file(mnt.root() / "net-none");
  EXPECT_EQ(interfaces(none), 1u) << none;
  EXPECT_NE(none.find("lo:"), std::string::npos);
  EXPECT_GT(interfaces(read_file(mnt.root() / "net-host")), 1u);
  EXPECT_EQ(read_file(mnt.root() / "sys-state"), "read-only\n");
  std::string devs = read_file(mnt.root() / "dev-list");
  for (auto d : {"null\n", "zero\n", "urandom\n", "pts\n", "shm\n", "fd\n"}) EXPECT_NE(devs.find(d), std::string::npos) << d;
  EXPECT_EQ(devs.find("sda"), std::string::npos);
  // The mount points stay out of the image: the base has no /etc/hosts.
  EXPECT_FALSE(fs::exists(mnt.root() / "etc/hosts"));
  EXPECT_FALSE(fs::exists(mnt.root() / "etc/resolv.conf"));

  // exec: the exit code comes back; writes land in a tmpfs and vanish.
  Result e =
      run({nemokit_binary(), "exec", "sandbox", "--", "sh", "-c", "echo changed > /message; cat /message; exit 7"}, env(cache));
  EXPECT_EQ(e.code, 7) << e.err;
  EXPECT_EQ(e.out, "changed\n");
  e = run({nemokit_binary(), "exec", "sandbox", "--", "cat", "/message"}, env(cache));
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "from build arg\n");
  e = run({nemokit_binary(), "exec", "no-such-image"}, env(cache));
  EXPECT_EQ(e.code, 1);
  EXPECT_NE(e.err.find("no-such-image.sqsh: no such image file"), std::string::npos) << e.err;
}

}  // namespace

namespace {

// More layers than one mount(2) option page can name (about 30 with paths of
// this length): RUN still sees all of them.
TEST_F(BuildImage, RunSeesEveryLayerOfATallImage) {
  fs::path dir = scratch_dir("tall");
  fs::path cache = dir / "cache";
  std::string df = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n";
  for (int i = 0; i < 50; ++i) {
    write_file(dir / "ctx" / ("f" + std::to_string(i)), std::to_string(i) + "\n");
    df += "COPY f" + std::to_string(i) + " /layers/\n";
  }
  df += "RUN ls /layers > /listing && cat /layers/f0 /layers/f49 > /ends\n";
  write_file(dir / "ctx/Dockerfile", df);
  Result r = build(dir / "ctx/Dockerfile", dir / "ctx", cache, "tall");
  ASSERT_EQ(r.code, 0) << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0);
  auto image = nemokit::oci::open_image("oci:" + (cache / "oci/tall").string() + ":tall");
  EXPECT_EQ(image.layers.size(), 52u);
  SquashfsMount mnt(cache / "containers/tall.sqsh");
  std::string listing = read_file(mnt.root() / "listing");
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n'), 50) << listing;
  EXPECT_EQ(read_file(mnt.root() / "ends"), "0\n49\n");
}

}  // namespace
