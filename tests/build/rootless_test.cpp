// Rootless builds and exec (issue 17): the real nemokit binary, run as an ordinary user made for
// the test with useradd (which gives it a range in /etc/subuid and /etc/subgid), builds FROM the
// Debian test base a Dockerfile that chowns files to 1234, deletes a lower file and replaces a
// lower folder. The squashfs must hold the image's owners (not the host's shifted ones), the
// layer tar the whiteouts, and the tree must equal root's build of the same Dockerfile; `nemokit
// exec` as the user runs a command in it (here, where /dev/fuse is root's alone, from the image
// unpacked into the user's cache). A second user without a range gets a single-uid mapping:
// builds that keep to root work, a chown fails with a message that says how to fix it.
// The test runs as root to make the users; it is skipped when it cannot.
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <sstream>

#include "build_test_support.hpp"
#include "nemokit/dockerfile/user_namespace.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/oci/layer_reader.hpp"
#include "support/process.hpp"
#include "support/remove_when_passed.hpp"

using namespace buildtest;

namespace {

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

bool has_range(const std::string& name, uid_t uid) {
  return !nemokit::dockerfile::subordinate_ranges("/etc/subuid", name, uid).empty() &&
         !nemokit::dockerfile::subordinate_ranges("/etc/subgid", name, uid).empty();
}

// The user `name`, made (or remade) so that it has a subordinate range exactly when `with_range`:
// useradd allocates one from login.defs' SUB_UID_MIN.., and SUB_UID_COUNT=0 asks for none.
std::optional<User> test_user(const std::string& name, bool with_range, std::string& why) {
  if (struct passwd* pw = getpwnam(name.c_str()); pw && has_range(name, pw->pw_uid) != with_range) run({"userdel", "-r", name});
  if (!getpwnam(name.c_str())) {
    std::vector<std::string> argv = {"useradd", "-m", "-s", "/bin/sh"};
    if (!with_range) argv.insert(argv.end(), {"-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"});
    argv.push_back(name);
    Result r = run(argv);
    if (r.code != 0) {
      why = "useradd " + name + " failed: " + r.err;
      return std::nullopt;
    }
  }
  struct passwd* pw = getpwnam(name.c_str());
  if (!pw) {
    why = "useradd made no user " + name;
    return std::nullopt;
  }
  if (has_range(name, pw->pw_uid) != with_range) {
    why = name + (with_range ? " got no range in /etc/subuid" : " keeps a range in /etc/subuid");
    return std::nullopt;
  }
  return User{name, pw->pw_uid, pw->pw_gid};
}

// A folder the user owns, outside the build tree (which another user may not be able to read),
// holding a copy of nemokit and its plugins (root's, 0755: the plugin host loads only files
// owned by root or the caller) and of the test base.
class RootlessBuild : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the test makes ordinary users with useradd, which needs root";
    std::string why;
    auto u = test_user("nemokit-rootless", true, why);
    if (!u) GTEST_SKIP() << why;
    user_ = *u;
    base_ = test_base_dir();
    char tmpl[] = "/tmp/nemokit-rootless-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    top_ = tmpl;
    nemokit::test::remove_when_passed(top_);
    fs::permissions(top_, fs::perms(0755));
    prefix_ = top_ / "prefix";
    fs::create_directories(prefix_ / "bin");
    fs::copy_file(nemokit_binary(), prefix_ / "bin" / "nemokit");
    fs::copy(fs::path(NEMOKIT_BINARY_DIR) / "lib", prefix_ / "lib",
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    // The runtime library, found first through LD_LIBRARY_PATH (the binary's RUNPATH names the build tree).
    for (auto& e : fs::directory_iterator(fs::path(NEMOKIT_BINARY_DIR) / "sdk" / "runtime"))
      if (e.path().filename().string().rfind("libnemokit_runtime.so", 0) == 0)
        fs::copy(e.path(), prefix_ / "lib" / e.path().filename(), fs::copy_options::copy_symlinks);
    fs::create_directories(top_ / "base");
    std::error_code ec;
    fs::create_hard_link(base_ / "base.tar", top_ / "base" / "base.tar", ec);
    if (ec) fs::copy_file(base_ / "base.tar", top_ / "base" / "base.tar");
    ctx_ = top_ / "ctx";
    write_file(ctx_ / "Dockerfile", kDockerfile);
    write_file(ctx_ / "note.txt", "copied with --chown\n");
    ASSERT_EQ(run({"chmod", "-R", "a+rX", top_.string()}).code, 0);
  }

  // The user's own folder (its build cache, say).
  fs::path user_dir(const std::string& name, const User& u) {
    fs::path p = top_ / name;
    fs::create_directories(p);
    EXPECT_EQ(chown(p.c_str(), u.uid, u.gid), 0);
    return p;
  }

  // nemokit ARGS as `u`, with its own HOME and build cache.
  Result as_user(const User& u, const fs::path& cache, std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = wrap_;
    std::vector<std::string> as = {"setpriv",
                                   "--reuid=" + std::to_string(u.uid),
                                   "--regid=" + std::to_string(u.gid),
                                   "--init-groups",
                                   "--",
                                   "env",
                                   "HOME=" + (top_ / "home").string(),
                                   "USER=" + u.name,
                                   "NEMOKIT_BUILD_CACHE_DIR=" + cache.string(),
                                   "LD_LIBRARY_PATH=" + (prefix_ / "lib").string()};
    as.insert(as.end(), env.begin(), env.end());
    as.push_back((prefix_ / "bin" / "nemokit").string());
    argv.insert(argv.end(), as.begin(), as.end());
    argv.insert(argv.end(), args.begin(), args.end());
    nemokit::test::RunOptions opt;
    opt.cwd = top_;
    auto r = nemokit::test::run(argv, opt);
    return {r.exit_code, r.out, r.err};
  }

  // Run the user's commands in a mount namespace of the test's own whose /dev/fuse the user may
  // open (the machine's is root's alone); such a command exits 99 where that cannot be made.
  void with_user_fuse() {
    fs::path dev = top_ / "fusedev";
    fs::create_directories(dev);
    wrap_ = {"unshare",
             "-m",
             "sh",
             "-c",
             "mount --make-rprivate / && mount -t tmpfs none \"$0\" && mknod -m 666 \"$0/fuse\" c 10 229 && "
             "mount --bind \"$0/fuse\" /dev/fuse || exit 99; exec \"$@\"",
             dev.string()};
  }

  // Run the user's commands in a mount namespace of the test's own where `programs` are not
  // there (/dev/null bound over each); such a command exits 99 where that cannot be done.
  void hide_programs(const std::string& programs) {
    wrap_ = {"unshare", "-m", "sh", "-c",
             "mount --make-rprivate / && for t in " + programs +
                 "; do p=$(command -v $t) && mount --bind /dev/null \"$p\" || exit 99; done; exec \"$@\"",
             "hide"};
  }

  std::vector<std::string> build_args(const std::string& tag, const fs::path& ctx) {
    return {"build",     "-f",          (ctx / "Dockerfile").string(),
            "--context", ctx.string(),  "--tag",
            tag,         "--build-arg", "BASE_IMAGE=docker-archive:" + (top_ / "base" / "base.tar").string()};
  }

  static constexpr const char* kDockerfile =
      "ARG BASE_IMAGE\n"
      "FROM ${BASE_IMAGE}\n"
      "COPY --chown=1234:2345 note.txt /opt/note.txt\n"
      "RUN echo owned > /opt/owned && chown 1234:2345 /opt/owned \\\n"
      " && mkdir /opt/kept && chown 1234:1234 /opt/kept && chmod 2750 /opt/kept \\\n"
      " && rm /usr/bin/uname \\\n"
      " && rm -rf /etc/apt && mkdir /etc/apt && echo replaced > /etc/apt/only\n"
      "RUN --mount=type=cache,target=/var/cache/t,uid=1234,gid=1234 echo x >> /var/cache/t/f \\\n"
      " && stat -c '%u:%g' /var/cache/t > /opt/cache-owner\n"
      "USER app\n"
      "RUN id -u > /home/app/who && id -G >> /home/app/who\n";

  User user_;
  fs::path base_, top_, prefix_, ctx_;
  std::vector<std::string> wrap_;  // put before setpriv (a mount namespace of the test's own)
};

// Each entry of one layer tar: path -> "uid:gid" (whiteouts included, as written).
std::map<std::string, std::string> layer_entries(const nemokit::oci::Layer& layer) {
  std::map<std::string, std::string> out;
  nemokit::oci::LayerReader reader(layer, "layer");
  while (archive_entry* e = reader.next()) {
    std::string path = archive_entry_pathname(e);
    if (!path.empty() && path.back() == '/') path.pop_back();
    out[path] = std::to_string(archive_entry_uid(e)) + ":" + std::to_string(archive_entry_gid(e));
  }
  return out;
}

TEST_F(RootlessBuild, KeepsTheImagesOwnersAndWhiteoutsAndMatchesRootsBuild) {
  fs::path cache = user_dir("cache", user_);
  user_dir("home", user_);
  Result b = as_user(user_, cache, build_args("rootless", ctx_));
  ASSERT_EQ(b.code, 0) << b.out << b.err;
  EXPECT_EQ(b.err.find("warning:"), std::string::npos) << b.err;  // a full mapping: no single-uid warning
  fs::path sqsh = cache / "containers" / "rootless.sqsh";
  ASSERT_TRUE(fs::exists(sqsh));
  struct stat st;
  ASSERT_EQ(stat(sqsh.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, user_.uid);  // the output belongs to the user, not to a subordinate id

  // unsquashfs -lln: the owners as numbers, as pyxis/enroot will see them.
  Result l = run({"unsquashfs", "-lln", "-d", "", sqsh.string()});
  ASSERT_EQ(l.code, 0) << l.err;
  auto line_of = [&](const std::string& path) {
    std::istringstream in(l.out);
    std::string line;
    while (std::getline(in, line))
      if (line.size() > path.size() && line.compare(line.size() - path.size() - 1, std::string::npos, " " + path) == 0)
        return line;
    return std::string();
  };
  EXPECT_NE(line_of("/opt/owned").find(" 1234/2345 "), std::string::npos) << line_of("/opt/owned");
  EXPECT_NE(line_of("/opt/note.txt").find(" 1234/2345 "), std::string::npos) << line_of("/opt/note.txt");
  EXPECT_EQ(line_of("/opt/kept").rfind("drwxr-s---", 0), 0u) << line_of("/opt/kept");
  EXPECT_NE(line_of("/opt/kept").find(" 1234/1234 "), std::string::npos) << line_of("/opt/kept");
  EXPECT_NE(line_of("/home/app/who").find(" 1000/1000 "), std::string::npos) << line_of("/home/app/who");
  EXPECT_EQ(line_of("/usr/bin/uname"), "");
  EXPECT_NE(line_of("/etc/apt/only"), "");
  EXPECT_EQ(line_of("/etc/apt/sources.list.d"), "");
  EXPECT_NE(line_of("/usr/bin/id"), "");

  // The RUN layer: image owners, a whiteout for the deleted file, an opaque marker for the
  // replaced folder (read from user.overlay.opaque: overlayfs ran with userxattr).
  auto image = nemokit::oci::open_image("oci:" + (cache / "oci" / "rootless").string() + ":rootless");
  ASSERT_EQ(image.layers.size(), 5u);  // base, COPY, RUN, RUN with a cache mount, RUN as app
  auto run_layer = layer_entries(image.layers[2]);
  EXPECT_EQ(run_layer["opt/owned"], "1234:2345");
  EXPECT_EQ(run_layer["opt/kept"], "1234:1234");
  EXPECT_TRUE(run_layer.count("usr/bin/.wh.uname"));
  EXPECT_TRUE(run_layer.count("etc/apt/.wh..wh..opq"));
  EXPECT_TRUE(run_layer.count("etc/apt/only"));
  for (auto& [path, owner] : run_layer) EXPECT_EQ(path.find("overlay"), std::string::npos) << path;
  // On the host the unpacked layer holds the shifted ids: 1234 is START + 1233.
  auto ranges = nemokit::dockerfile::subordinate_ranges("/etc/subuid", user_.name, user_.uid);
  fs::path layer_dir = cache / "build" / "layers-userns" / image.config["rootfs"]["diff_ids"][2].get<std::string>().substr(7);
  ASSERT_EQ(lstat((layer_dir / "opt" / "owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ranges.at(0).start + 1233);

  // The same Dockerfile built by root: the same tree, entry for entry.
  fs::path root_cache = top_ / "root-cache";
  Result rb = run({nemokit_binary(), "build", "-f", (ctx_ / "Dockerfile").string(), "--context", ctx_.string(), "--tag", "rooted",
                   "--build-arg", "BASE_IMAGE=docker-archive:" + (top_ / "base" / "base.tar").string()},
                  {"NEMOKIT_BUILD_CACHE_DIR=" + root_cache.string()});
  ASSERT_EQ(rb.code, 0) << rb.err;
  {
    SquashfsMount rootless(sqsh), rooted(root_cache / "containers" / "rooted.sqsh");
    auto a = tree_listing(rootless.root()), b2 = tree_listing(rooted.root());
    EXPECT_EQ(a.size(), b2.size());
    for (auto& [path, what] : b2) EXPECT_EQ(a[path], what) << path;
    EXPECT_EQ(a["opt/owned"], b2["opt/owned"]);
    EXPECT_EQ(a["home/app/who"], b2["home/app/who"]);
  }
  // RUN --mount=type=cache: the folder owned as asked, and in no layer.
  EXPECT_EQ(run({"unsquashfs", "-cat", sqsh.string(), "/opt/cache-owner"}).out, "1234:1234\n");
  EXPECT_EQ(line_of("/var/cache/t"), "");
  // USER app's RUN ran as 1000 with its groups from the image.
  Result who = run({"unsquashfs", "-cat", sqsh.string(), "/home/app/who"});
  EXPECT_EQ(who.out, "1000\n1000\n");

  // exec as the user: appears as root, sees the image's owners.
  Result e = as_user(
      user_, cache,
      {"exec", "rootless", "--", "sh", "-c", "id -u; stat -c '%u:%g %a' /opt/owned /opt/kept; cat /etc/apt/only; ls /etc/apt"});
  ASSERT_EQ(e.code, 0) << e.out << e.err;
  EXPECT_EQ(e.out, "0\n1234:2345 644\n1234:1234 2750\nreplaced\nonly\n");
  EXPECT_NE(e.err.find("unpacking"), std::string::npos) << e.err;  // no FUSE for users here
  // A changed .sqsh (a rebuild) is unpacked again and the older tree goes, as no exec holds it.
  ASSERT_EQ(run({"touch", "-d", "@1700000000", sqsh.string()}).code, 0);
  e = as_user(user_, cache, {"exec", "rootless", "--", "true"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.err.find("unpacking"), std::string::npos) << e.err;
  std::vector<std::string> trees;
  for (auto& d : fs::directory_iterator(cache / "exec"))
    if (d.is_directory()) trees.push_back(d.path().filename().string());
  EXPECT_EQ(trees.size(), 1u) << ::testing::PrintToString(trees);
  // The container's mounts as root's exec makes them: /dev/null from the host, a --mount.
  write_file(top_ / "shared" / "note", "mounted note\n");
  ASSERT_EQ(run({"chmod", "-R", "a+rX", (top_ / "shared").string()}).code, 0);
  e = as_user(user_, cache,
              {"exec", "rootless", "--mount", (top_ / "shared").string() + ":/mnt/shared:ro", "--", "sh", "-c",
               "test -c /dev/null && echo devnull; cat /mnt/shared/note; touch /mnt/shared/x 2>/dev/null || echo read-only"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "devnull\nmounted note\nread-only\n");
  // The second exec reuses the unpacked tree; the command's exit code comes back.
  e = as_user(user_, cache, {"exec", (cache / "containers" / "rootless.sqsh").string(), "--", "sh", "-c", "exit 7"});
  EXPECT_EQ(e.code, 7) << e.err;
  EXPECT_EQ(e.err.find("unpacking"), std::string::npos) << e.err;
}

TEST_F(RootlessBuild, WithoutASubordinateRangeMapsOneUidAndSaysHowToGetARange) {
  std::string why;
  auto u = test_user("nemokit-norange", false, why);
  if (!u) GTEST_SKIP() << why;
  fs::path cache = user_dir("norange-cache", *u);
  user_dir("home", *u);
  fs::path ctx = top_ / "norange-ctx";
  write_file(ctx / "Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo made as root > /made\n");
  ASSERT_EQ(run({"chmod", "-R", "a+rX", ctx.string()}).code, 0);
  Result b = as_user(*u, cache, build_args("norange", ctx));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("warning: nemokit-norange has no range in /etc/subuid"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("usermod --add-subuids"), std::string::npos) << b.err;
  Result l = run({"unsquashfs", "-lln", "-d", "", (cache / "containers" / "norange.sqsh").string(), "/made"});
  EXPECT_NE(l.out.find(" 0/0 "), std::string::npos) << l.out;

  write_file(ctx / "Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN touch /f && chown 1234 /f\n");
  b = as_user(*u, cache, build_args("norange-chown", ctx));
  EXPECT_NE(b.code, 0);
  EXPECT_NE(b.err.find("maps only your own uid"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("usermod --add-subuids 100000-165535 --add-subgids 100000-165535"), std::string::npos) << b.err;

  // exec works the same way: the image unpacked, owners it cannot map left as the user's.
  Result e = as_user(*u, cache, {"exec", "norange", "--", "cat", "/made"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "made as root\n");
}

// Where /dev/fuse is usable (0666, as on most cluster nodes) exec mounts the image with squashfuse
// in its user namespace instead of unpacking it. Shown here with a 0666 fuse node bound over
// /dev/fuse in a mount namespace of the test's own (the machine's /dev/fuse is root's alone).
TEST_F(RootlessBuild, ExecMountsWithSquashfuseWhereDevFuseIsUsable) {
  if (nemokit::dockerfile::find_program("squashfuse").empty())
    GTEST_SKIP() << "squashfuse is not installed (scripts/setup-deps.sh)";
  fs::path cache = user_dir("cache", user_);
  user_dir("home", user_);
  Result b = as_user(user_, cache, build_args("fuse", ctx_));
  ASSERT_EQ(b.code, 0) << b.err;
  with_user_fuse();
  Result e = as_user(user_, cache,
                     {"exec", "fuse", "--", "sh", "-c",
                      "id -u; stat -c '%u:%g %a' /opt/owned /opt/kept; cat /etc/apt/only; setpriv --reuid=1000 --regid=1000 "
                      "--clear-groups sh -c 'cat /etc/apt/only; "
                      "cat /etc/shadow' 2>&1; grep -c fuse /proc/mounts"});
  if (e.code == 99) GTEST_SKIP() << "cannot make a 0666 /dev/fuse here: " << e.err;
  ASSERT_EQ(e.code, 1) << e.out << e.err;  // grep finds no fuse mount inside: it is below the overlay
  EXPECT_EQ(e.out, "0\n1234:2345 644\n1234:1234 2750\nreplaced\nreplaced\ncat: /etc/shadow: Permission denied\n0\n");
  EXPECT_EQ(e.err.find("unpacking"), std::string::npos) << e.err;
  EXPECT_FALSE(fs::exists(cache / "exec"));
}

// fuse-overlayfs, what a rootless build mounts where the kernel refuses overlayfs to a user
// namespace (before Linux 5.11), asked for here with NEMOKIT_OVERLAY: the image is the kernel
// overlay's entry for entry (owners, the deleted file, the replaced folder), and each layer holds
// the same entries, with overlayfs' markers only (the upper folders were rewritten from
// fuse-overlayfs' own).
TEST_F(RootlessBuild, FuseOverlayfsBuildsTheImageTheKernelsOverlayBuilds) {
  if (nemokit::dockerfile::find_program("fuse-overlayfs").empty())
    GTEST_SKIP() << "fuse-overlayfs is not installed (scripts/setup-deps.sh)";
  fs::path kernel_cache = user_dir("cache", user_), fuse_cache = user_dir("fuse-cache", user_);
  user_dir("home", user_);
  Result k = as_user(user_, kernel_cache, build_args("kernel", ctx_));
  ASSERT_EQ(k.code, 0) << k.out << k.err;
  with_user_fuse();
  Result f = as_user(user_, fuse_cache, build_args("fuse", ctx_), {"NEMOKIT_OVERLAY=fuse-overlayfs"});
  if (f.code == 99) GTEST_SKIP() << "cannot make a 0666 /dev/fuse here: " << f.err;
  ASSERT_EQ(f.code, 0) << f.out << f.err;
  {
    SquashfsMount a(kernel_cache / "containers" / "kernel.sqsh"), b(fuse_cache / "containers" / "fuse.sqsh");
    auto ka = tree_listing(a.root()), fb = tree_listing(b.root());
    EXPECT_EQ(ka.size(), fb.size());
    for (auto& [path, what] : ka) EXPECT_EQ(fb[path], what) << path;
  }
  auto kernel_image = nemokit::oci::open_image("oci:" + (kernel_cache / "oci" / "kernel").string() + ":kernel");
  auto fuse_image = nemokit::oci::open_image("oci:" + (fuse_cache / "oci" / "fuse").string() + ":fuse");
  ASSERT_EQ(fuse_image.layers.size(), kernel_image.layers.size());
  for (size_t i = 1; i < kernel_image.layers.size(); ++i)
    EXPECT_EQ(layer_entries(fuse_image.layers[i]), layer_entries(kernel_image.layers[i])) << "layer " << i;
  auto run_layer = layer_entries(fuse_image.layers[2]);
  EXPECT_TRUE(run_layer.count("usr/bin/.wh.uname"));
  EXPECT_TRUE(run_layer.count("etc/apt/.wh..wh..opq"));
  EXPECT_FALSE(run_layer.count("etc/apt/.wh..opq"));
  // `nemokit exec` over fuse-overlayfs too: the image's files and owners, writes kept apart.
  Result e = as_user(user_, fuse_cache,
                     {"exec", "fuse", "--", "sh", "-c", "stat -c '%u:%g' /opt/owned; cat /etc/apt/only; touch /opt/new && echo wrote"},
                     {"NEMOKIT_OVERLAY=fuse-overlayfs"});
  EXPECT_EQ(e.code, 0) << e.out << e.err;
  EXPECT_EQ(e.out, "1234:2345\nreplaced\nwrote\n") << e.err;
  // A bad NEMOKIT_OVERLAY is named.
  Result bad = as_user(user_, fuse_cache, build_args("bad", ctx_), {"NEMOKIT_OVERLAY=fuse"});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("NEMOKIT_OVERLAY=fuse: expected \"kernel\" or \"fuse-overlayfs\""), std::string::npos) << bad.err;
}

// Where /dev/fuse is usable a rootless build keeps the base's layers as squashfs files and
// mounts them with squashfuse under the kernel's overlayfs (base_layer_form): the image, its
// owners and every step's layer are those of the build over unpacked base layers, and the RUN
// step as USER app runs the image's programs through the FUSE lower.
TEST_F(RootlessBuild, BaseLayersMountWithSquashfuseWhereDevFuseIsUsable) {
  if (nemokit::dockerfile::find_program("squashfuse").empty())
    GTEST_SKIP() << "squashfuse is not installed (scripts/setup-deps.sh)";
  fs::path folder_cache = user_dir("cache", user_), file_cache = user_dir("file-cache", user_);
  user_dir("home", user_);
  Result k = as_user(user_, folder_cache, build_args("folders", ctx_));
  ASSERT_EQ(k.code, 0) << k.out << k.err;
  with_user_fuse();
  Result f = as_user(user_, file_cache, build_args("files", ctx_));
  if (f.code == 99) GTEST_SKIP() << "cannot make a 0666 /dev/fuse here: " << f.err;
  ASSERT_EQ(f.code, 0) << f.out << f.err;
  EXPECT_EQ(f.err.find("warning:"), std::string::npos) << f.err;
  size_t files = 0;
  for (auto& e : fs::directory_iterator(file_cache / "build" / "layers-userns")) files += e.path().extension() == ".sqsh";
  EXPECT_EQ(files, 1u);
  for (auto& e : fs::directory_iterator(folder_cache / "build" / "layers-userns")) EXPECT_NE(e.path().extension(), ".sqsh");
  {
    SquashfsMount a(folder_cache / "containers" / "folders.sqsh"), b(file_cache / "containers" / "files.sqsh");
    EXPECT_EQ(tree_listing(a.root()), tree_listing(b.root()));
  }
  auto folder_image = nemokit::oci::open_image("oci:" + (folder_cache / "oci" / "folders").string() + ":folders");
  auto file_image = nemokit::oci::open_image("oci:" + (file_cache / "oci" / "files").string() + ":files");
  ASSERT_EQ(file_image.layers.size(), folder_image.layers.size());
  for (size_t i = 1; i < folder_image.layers.size(); ++i)
    EXPECT_EQ(layer_entries(file_image.layers[i]), layer_entries(folder_image.layers[i])) << "layer " << i;
}

// User namespaces unavailable to the user, here because a namespace limit is reached: the user
// runs in a namespace whose parent allows one namespace below it, so the build's own is one too
// many. The build stops before any work, saying so and what an administrator changes.
TEST_F(RootlessBuild, NoUserNamespaceLeftSaysWhatAnAdministratorChanges) {
  fs::path cache = user_dir("cache", user_);
  user_dir("home", user_);
  std::vector<std::string> argv = {"unshare", "--user", "--map-root-user", "sh", "-c",
                                   "u=$0 g=$1; shift; echo 1 > /proc/sys/user/max_user_namespaces || exit 99; "
                                   "exec unshare --user --map-user=\"$u\" --map-group=\"$g\" \"$@\"",
                                   std::to_string(user_.uid), std::to_string(user_.gid), "env",
                                   "HOME=" + (top_ / "home").string(), "USER=" + user_.name,
                                   "NEMOKIT_BUILD_CACHE_DIR=" + cache.string(), "LD_LIBRARY_PATH=" + (prefix_ / "lib").string(),
                                   (prefix_ / "bin" / "nemokit").string()};
  for (const std::string& a : build_args("nons", ctx_)) argv.push_back(a);
  nemokit::test::RunOptions opt;
  opt.cwd = top_;
  auto r = nemokit::test::run(argv, opt);
  if (r.exit_code == 99) GTEST_SKIP() << "cannot lower the namespace limit here: " << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("user namespaces are not available to this user (unshare: No space left on device)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("the limit of user namespaces is reached"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("sysctl -w user.max_user_namespaces="), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cache / "containers" / "nons.sqsh"));
}

// No newuidmap (Debian's uidmap package not installed): hidden here in a mount namespace of the
// test's own. A user with a range is told what to install, before any work.
TEST_F(RootlessBuild, WithoutNewuidmapSaysWhichPackageToInstall) {
  fs::path cache = user_dir("cache", user_);
  user_dir("home", user_);
  hide_programs("newuidmap newgidmap");
  Result r = as_user(user_, cache, build_args("nomap", ctx_));
  if (r.code == 99) GTEST_SKIP() << "cannot hide newuidmap here: " << r.err;
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("needs newuidmap and newgidmap to map " + user_.name + "'s range from /etc/subuid: install Debian's uidmap "
                       "package (apt-get install uidmap)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(cache / "containers" / "nomap.sqsh"));
}

// fuse-overlayfs needed but not installed (hidden here in a mount namespace of the test's own):
// the build says which package to install.
TEST_F(RootlessBuild, WithoutFuseOverlayfsWhereItIsNeededSaysWhichPackageToInstall) {
  fs::path cache = user_dir("cache", user_);
  user_dir("home", user_);
  hide_programs("fuse-overlayfs");
  Result r = as_user(user_, cache, build_args("nofuse", ctx_), {"NEMOKIT_OVERLAY=fuse-overlayfs"});
  if (r.code == 99) GTEST_SKIP() << "fuse-overlayfs is not installed here, or cannot be hidden: " << r.err;
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("NEMOKIT_OVERLAY=fuse-overlayfs: install Debian's fuse-overlayfs (apt-get install fuse-overlayfs)"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(cache / "containers" / "nofuse.sqsh"));
}

// /etc/subuid as shadow-utils reads it: by name or by number, several lines per user, comments
// and malformed lines skipped. Runs as any user.
TEST(SubordinateRanges, ByNameOrIdInFileOrder) {
  fs::path dir = scratch_dir("subid");
  write_file(dir / "subuid",
             "# comment\n"
             "alice:100000:65536\n"
             "bob:165536:65536\n"
             "1001:300000:1000\n"
             "alice:400000:10\n"
             "alice:bad:10\n"
             "alice:500000:0\n"
             "alice:600000\n"
             "alice:99999999999:1\n");
  auto r = nemokit::dockerfile::subordinate_ranges(dir / "subuid", "alice", 1001);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].start, 100000u);
  EXPECT_EQ(r[0].count, 65536u);
  EXPECT_EQ(r[1].start, 300000u);
  EXPECT_EQ(r[1].count, 1000u);
  EXPECT_EQ(r[2].start, 400000u);
  EXPECT_TRUE(nemokit::dockerfile::subordinate_ranges(dir / "subuid", "carol", 1002).empty());
  EXPECT_TRUE(nemokit::dockerfile::subordinate_ranges(dir / "missing", "alice", 1001).empty());
}

}  // namespace
