#pragma once
// The fixture of the Docker-semantics tests: builds a small Dockerfile with the real `nemokit`
// binary, reads the result back (squashfs tree and image config) and, where buildah is
// installed, builds the same Dockerfile with buildah (--isolation=chroot, docker format) and
// requires equal trees and configs, timestamps aside. Needs root; cases with RUN steps need the
// Debian test base (make_test_base.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "build_test_support.hpp"
#include "nemokit/oci/image.hpp"
#include "nemokit/runtime/sha256.hpp"

namespace buildtest {

using nlohmann::json;

inline const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Image {
  std::map<std::string, std::string> tree;  // tree_listing, without the root folder itself
  json config;                              // the compared fields of the image config
};

// The config fields a Dockerfile sets, with empty values dropped: buildah's docker format
// writes "Cmd": [] where an OCI config leaves the key out.
inline json compared_config(const json& c) {
  json out = json::object();
  for (const char* key :
       {"User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Volumes", "OnBuild", "ExposedPorts", "Labels", "StopSignal"}) {
    if (!c.contains(key) || c[key].is_null() || c[key].empty() || c[key] == "") continue;
    out[key] = c[key];
  }
  // buildah labels every image with its version.
  if (out.contains("Labels")) {
    out["Labels"].erase("io.buildah.version");
    if (out["Labels"].empty()) out.erase("Labels");
  }
  return out;
}

inline std::string file_entry(const std::string& mode, const std::string& owner, const std::string& content) {
  return "f " + mode + " " + owner + " " + nemokit::rt::Sha256::digest_of(content);
}

class Fidelity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "builds need root (mounts and namespaces)";
    dir_ = scratch_dir(std::string("fidelity-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    write_file(dir_ / "ctx/a.txt", "A\n");
    write_file(dir_ / "ctx/b.txt", "B\n");
    has_buildah_ = run({"buildah", "--version"}).code == 0;
  }

  // The Debian base for cases with RUN steps; false, with the reason in base_missing_, when it
  // cannot be made here (debootstrap needs Debian's mirror).
  bool use_base() {
    try {
      base_ = test_base_dir() / "base.tar";
      return true;
    } catch (const std::exception& e) {
      base_missing_ = e.what();
      return false;
    }
  }

  std::vector<std::string> base_arg() const {
    if (base_.empty()) return {};
    return {"--build-arg", "BASE_IMAGE=docker-archive:" + base_.string()};
  }

  // nemokit build of `dockerfile` under `tag`; the result's code and stderr.
  Result build(const std::string& dockerfile, const std::string& tag) {
    fs::path file = dir_ / "ctx" / ("Dockerfile." + tag);
    write_file(file, dockerfile);
    std::vector<std::string> argv = {nemokit_binary(),        "build", "-f", file.string(), "--context",
                                     (dir_ / "ctx").string(), "--tag", tag};
    for (auto& a : base_arg()) argv.push_back(a);
    for (auto& a : extra_args_) argv.push_back(a);
    std::vector<std::string> env = extra_env_;
    env.push_back("NEMOKIT_BUILD_CACHE_DIR=" + (dir_ / "cache").string());
    return run(argv, env);
  }

  nemokit::oci::Image oci_image(const std::string& tag) {
    return nemokit::oci::open_image("oci:" + (dir_ / "cache/oci" / tag).string() + ":" + tag);
  }

  // nemokit's image `tag`, built before: its squashfs tree and config.
  Image ours(const std::string& tag) {
    Image img;
    SquashfsMount mnt(dir_ / "cache/containers" / (tag + ".sqsh"));
    img.tree = without_enroot_files(tree_listing(mnt.root()));
    img.config = compared_config(oci_image(tag).config["config"]);
    return img;
  }

  // The files nemokit writes for enroot (pyxis) replace the image's own, and a scratch
  // image gets an /etc for them: both builders' trees are compared without them.
  static std::map<std::string, std::string> without_enroot_files(std::map<std::string, std::string> tree) {
    for (auto f : {"", "etc/rc", "etc/rc.local", "etc/environment", "etc/fstab"}) tree.erase(f);
    auto after = tree.upper_bound("etc/");
    if (tree.count("etc") && (after == tree.end() || after->first.rfind("etc/", 0) != 0)) tree.erase("etc");
    return tree;
  }

  std::vector<std::string> buildah_cmd(std::vector<std::string> args) const {
    std::vector<std::string> argv = {"buildah", "--root", (dir_ / "buildah-root").string(), "--runroot",
                                     (dir_ / "buildah-run").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // buildah's build of the same Dockerfile (written by build()), read back unless `read` is
  // false (an image with ONBUILD triggers, which `buildah from` would run); nullopt without
  // buildah.
  std::optional<Image> buildah(const std::string& tag, bool read = true) {
    if (!has_buildah_) return std::nullopt;
    std::vector<std::string> bud = {"bud",
                                    "--format",
                                    "docker",
                                    "--isolation=chroot",
                                    "--layers=false",
                                    "-f",
                                    (dir_ / "ctx" / ("Dockerfile." + tag)).string(),
                                    "-t",
                                    tag};
    for (auto& a : base_arg()) bud.push_back(a);
    for (auto& a : extra_args_) bud.push_back(a);
    bud.push_back((dir_ / "ctx").string());
    std::vector<std::string> env = extra_env_;
    env.push_back("BUILDAH_ISOLATION=chroot");
    Result r = run(buildah_cmd(bud), env);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    if (r.code != 0) return std::nullopt;
    if (!read) return Image{};
    Result inspect = run(buildah_cmd({"inspect", "--type", "image", tag}));
    EXPECT_EQ(inspect.code, 0) << inspect.err;
    Image img;
    img.config = compared_config(json::parse(inspect.out)["Docker"]["config"]);
    Result from = run(buildah_cmd({"from", tag}));
    EXPECT_EQ(from.code, 0) << from.err;
    std::string ctr = from.out.substr(0, from.out.find('\n'));
    Result mount = run(buildah_cmd({"mount", ctr}));
    EXPECT_EQ(mount.code, 0) << mount.err;
    img.tree = without_enroot_files(tree_listing(mount.out.substr(0, mount.out.find('\n'))));
    run(buildah_cmd({"umount", ctr}));
    run(buildah_cmd({"rm", ctr}));
    return img;
  }

  // Both builders' results must be equal. buildah leaves the mount points of its RUN
  // steps in the image (empty /etc/hostname, /etc/hosts, /etc/resolv.conf and /run);
  // nemokit keeps them out.
  // `mount_points`: folders buildah leaves for a RUN --mount target, which nemokit keeps out.
  void expect_same_as_buildah(const std::string& tag, const Image& mine, const std::vector<std::string>& mount_points = {}) {
    std::optional<Image> theirs = buildah(tag);
    if (!theirs) {
      if (!has_buildah_) std::cerr << "buildah is not installed: " << tag << " is not compared\n";
      return;
    }
    for (auto p : {"etc/hostname", "etc/hosts", "etc/resolv.conf", "run"})
      if (!mine.tree.count(p)) theirs->tree.erase(p);
    for (auto& p : mount_points)
      if (!mine.tree.count(p) && theirs->tree.count(p) && theirs->tree[p].rfind("d ", 0) == 0) theirs->tree.erase(p);
    for (auto& [path, what] : mine.tree) {
      auto it = theirs->tree.find(path);
      if (it == theirs->tree.end())
        ADD_FAILURE() << tag << ": only nemokit's image has " << path << " (" << what << ")";
      else
        EXPECT_EQ(what, it->second) << tag << ": " << path << " (nemokit, buildah)";
    }
    for (auto& [path, what] : theirs->tree)
      if (!mine.tree.count(path)) ADD_FAILURE() << tag << ": only buildah's image has " << path << " (" << what << ")";
    EXPECT_EQ(mine.config.dump(), theirs->config.dump()) << tag << ": image config (nemokit, buildah)";
  }

  fs::path dir_, base_;
  // Options (--secret ...) and environment entries both builders get.
  std::vector<std::string> extra_args_, extra_env_;
  std::string base_missing_;
  bool has_buildah_ = false;
};

}  // namespace buildtest
