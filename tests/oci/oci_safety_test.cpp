// Crafted layers that try to write outside the image, and corrupted blobs: each
// must fail with a message naming the problem, leave no partial output and
// leave an older file at the destination untouched.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"

using nemokit::test::read_file;

using namespace ocitest;
namespace oci = nemokit::oci;

namespace {

oci::ConvertOptions quiet_options() {
  oci::ConvertOptions o;
  o.handle_signals = false;
  return o;
}

// Converts layers (bottom first) over an existing destination and returns the
// error message; checks the old file survived and nothing partial was left.
std::string conversion_error(const std::string& name, const std::vector<std::string>& tars) {
  fs::path work = scratch_dir(name);
  std::vector<LayerBlob> layers;
  for (auto& t : tars) layers.push_back({t, "gzip"});
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path out = work / "out" / "image.sqsh";
  fs::create_directories(out.parent_path());
  { std::ofstream(out) << "previous image"; }
  std::string message;
  try {
    oci::convert_image("oci:" + layout.string(), out, quiet_options());
  } catch (const oci::Error& e) {
    message = e.what();
  }
  EXPECT_EQ(read_file(out), "previous image");
  size_t files = 0;
  for (auto& e : fs::directory_iterator(out.parent_path())) (void)e, ++files;
  EXPECT_EQ(files, 1u) << "a partial file was left next to " << out;
  return message;
}

}  // namespace

TEST(oci_safety, DotDotEntryIsRejected) {
  auto msg = conversion_error("dotdot", {make_tar({file_entry("ok", "1"), file_entry("../escape", "x")})});
  EXPECT_NE(msg.find("'../escape' climbs out"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer 1/1"), std::string::npos) << msg;
}

TEST(oci_safety, AbsolutePathIsRejected) {
  auto msg = conversion_error("abs", {make_tar({file_entry("/etc/cron.d/evil", "x")})});
  EXPECT_NE(msg.find("absolute path"), std::string::npos) << msg;
}

TEST(oci_safety, WritingThroughASymlinkOfTheSameLayerIsRejected) {
  auto msg = conversion_error("symsame", {make_tar({symlink_entry("etc", "/etc"), file_entry("etc/passwd", "root::0:0")})});
  EXPECT_NE(msg.find("goes through the symlink 'etc'"), std::string::npos) << msg;
}

TEST(oci_safety, WritingThroughASymlinkOfAnEarlierLayerIsRejected) {
  auto msg = conversion_error(
      "symcross", {make_tar({symlink_entry("lib", "../../../../etc")}), make_tar({file_entry("lib/ld.so.preload", "evil")})});
  EXPECT_NE(msg.find("symlink 'lib' would redirect"), std::string::npos) << msg;
}

TEST(oci_safety, HardLinkOutsideOrMissingIsRejected) {
  auto out = conversion_error("hlout", {make_tar({hardlink_entry("shadow", "../../etc/shadow")})});
  EXPECT_NE(out.find("climbs out"), std::string::npos) << out;
  auto abs = conversion_error("hlabs", {make_tar({hardlink_entry("shadow", "/etc/shadow")})});
  EXPECT_NE(abs.find("absolute path"), std::string::npos) << abs;
  auto missing = conversion_error("hlmissing", {make_tar({hardlink_entry("a", "not/there")})});
  EXPECT_NE(missing.find("hard link 'a' points to 'not/there'"), std::string::npos) << missing;
}

TEST(oci_safety, WhiteoutsNamingParentsOrNothingAreRejected) {
  auto dots = conversion_error("whdotdot", {make_tar({file_entry("a", "a")}), make_tar({file_entry("sub/.wh...", "")})});
  EXPECT_NE(dots.find("names '..'"), std::string::npos) << dots;
  auto bare = conversion_error("whbare", {make_tar({file_entry("a", "a")}), make_tar({file_entry(".wh.", "")})});
  EXPECT_NE(bare.find("bare whiteout"), std::string::npos) << bare;
  auto dot = conversion_error("whdot", {make_tar({file_entry("a", "a")}), make_tar({file_entry("sub/.wh..", "")})});
  EXPECT_NE(dot.find("names '.'"), std::string::npos) << dot;
}

TEST(oci_safety, CorruptBlobIsNamed) {
  fs::path work = scratch_dir("corrupt");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", std::string(100000, 'a'))}), "none"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  std::string digest = sha256(layers[0].tar).substr(7);
  fs::path blob = layout / "blobs/sha256" / digest;
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2000);
    f.put('Z');
  }
  try {
    oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
    FAIL() << "corrupt blob accepted";
  } catch (const oci::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(digest), std::string::npos) << msg;
    EXPECT_NE(msg.find("has digest"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(work / "x.sqsh"));
}

// A layer blob too short to be a tar, with a correct digest: the reading thread had already started
// when the reader gave up, and destroying it joinable aborted the process. An empty blob is an
// empty layer.
TEST(oci_safety, TinyLayerBlobIsNamed) {
  for (std::string tar : {std::string("x"), std::string(511, '\0'), std::string()}) {
    fs::path work = scratch_dir("tiny" + std::to_string(tar.size()));
    std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "gzip"}, {tar, "none"}};
    fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
    std::string message;
    try {
      oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
    } catch (const oci::Error& e) {
      message = e.what();
    }
    if (tar.empty()) {
      EXPECT_EQ(message, "");
      EXPECT_TRUE(fs::exists(work / "x.sqsh"));
      continue;
    }
    EXPECT_NE(message.find("layer 2/2"), std::string::npos) << tar.size() << " bytes: " << message;
    EXPECT_NE(message.find(sha256(tar).substr(7)), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(work / "x.sqsh"));
  }
}

// An image config value of the wrong type once surfaced as nlohmann's type_error.302.
TEST(oci_safety, ConfigValueOfTheWrongTypeIsNamed) {
  fs::path work = scratch_dir("workdir");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "gzip"}};
  auto config = default_config(layers);
  config["config"]["WorkingDir"] = 5;
  fs::path layout = write_oci_layout(work / "oci", layers, config);
  try {
    oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
    FAIL() << "a numeric WorkingDir was accepted";
  } catch (const oci::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(layout.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("image config: config.WorkingDir is not a string"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(work / "x.sqsh"));
}

TEST(oci_safety, DiffIdMismatchIsNamed) {
  fs::path work = scratch_dir("diffid");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "zstd"}};
  auto config = default_config(layers);
  config["rootfs"]["diff_ids"][0] = sha256("something else");
  fs::path layout = write_oci_layout(work / "oci", layers, config);
  try {
    oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
    FAIL() << "wrong diff_id accepted";
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match the config's diff_id"), std::string::npos) << e.what();
  }
}

TEST(oci_safety, WrongDescriptorSizeIsNamed) {
  fs::path work = scratch_dir("size");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  // Rewrite the manifest with a wrong layer size (and fix the index to match).
  auto index = nlohmann::json::parse(read_file(layout / "index.json"));
  std::string mdigest = index["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(read_file(layout / "blobs/sha256" / mdigest.substr(7)));
  manifest["layers"][0]["size"] = manifest["layers"][0]["size"].get<uint64_t>() + 1;
  std::string m = manifest.dump();
  std::string nd = sha256(m);
  { std::ofstream(layout / "blobs/sha256" / nd.substr(7)) << m; }
  index["manifests"][0]["digest"] = nd;
  index["manifests"][0]["size"] = m.size();
  { std::ofstream(layout / "index.json") << index.dump(); }
  try {
    oci::convert_image("oci:" + layout.string(), work / "x.sqsh", quiet_options());
    FAIL() << "wrong size accepted";
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("its descriptor says"), std::string::npos) << e.what();
  }
}

// Manifest members of the wrong type (found by fuzz_oci_image: a config digest that is a number)
// are the image's error, naming it, never a JSON library exception.
TEST(oci_safety, ManifestMembersOfTheWrongTypeAreNamed) {
  fs::path work = scratch_dir("manifest-types");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  const auto index = nlohmann::json::parse(read_file(layout / "index.json"));
  const std::string mdigest = index["manifests"][0]["digest"];
  const auto manifest = nlohmann::json::parse(read_file(layout / "blobs/sha256" / mdigest.substr(7)));
  auto with_manifest = [&](const nlohmann::json& m) {  // the index pointed at a rewritten manifest
    const std::string text = m.dump(), digest = sha256(text);
    { std::ofstream(layout / "blobs/sha256" / digest.substr(7)) << text; }
    auto i = index;
    i["manifests"][0]["digest"] = digest;
    i["manifests"][0]["size"] = text.size();
    std::ofstream(layout / "index.json") << i.dump();
  };
  auto error_of_open = [&] {
    try {
      oci::open_image("oci:" + layout.string());
    } catch (const oci::Error& e) {
      return std::string(e.what());
    }
    return std::string("opened");
  };
  auto m = manifest;
  m["config"]["digest"] = 12345;
  with_manifest(m);
  std::string msg = error_of_open();
  EXPECT_NE(msg.find("config: descriptor without a digest"), std::string::npos) << msg;
  m = manifest;
  m["layers"][0]["digest"] = 12345;
  with_manifest(m);
  msg = error_of_open();
  EXPECT_NE(msg.find(layout.string() + ": malformed image description: type must be string"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
}

TEST(oci_safety, TamperedManifestIsNamed) {
  fs::path work = scratch_dir("manifest");
  std::vector<LayerBlob> layers = {{make_tar({file_entry("a", "a")}), "gzip"}};
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  auto index = nlohmann::json::parse(read_file(layout / "index.json"));
  std::string mdigest = index["manifests"][0]["digest"];
  fs::path mpath = layout / "blobs/sha256" / mdigest.substr(7);
  std::string m = read_file(mpath);
  m[m.size() - 1] = ' ';
  { std::ofstream(mpath) << m; }
  try {
    oci::open_image("oci:" + layout.string());
    FAIL() << "tampered manifest accepted";
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not match digest " + mdigest), std::string::npos) << e.what();
  }
}

// Ctrl-C in the middle of a conversion: the old file stays, nothing partial.
TEST(oci_safety, InterruptLeavesOldFileAndNoPartial) {
  fs::path work = scratch_dir("interrupt");
  // Incompressible data and xz at level 9 keep the conversion busy for seconds.
  std::string noise(96u << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < noise.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&noise[i], &x, 8);
  }
  std::vector<LayerBlob> layers = {{make_tar({file_entry("noise", noise)}), "none"}};
  noise.clear();
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path out = work / "out" / "image.sqsh";
  fs::create_directories(out.parent_path());
  { std::ofstream(out) << "previous image"; }
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    oci::ConvertOptions o;  // handles SIGINT like the command does
    o.squashfs.compressor = "xz";
    o.squashfs.level = 9;
    o.squashfs.workers = 1;
    auto image = oci::open_image("oci:" + layout.string());
    [[maybe_unused]] auto n = ::write(ready[1], "go", 2);
    try {
      oci::convert_image(image, out, o);
    } catch (const oci::Interrupted&) {
      ::_exit(42);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  char buf[2];
  ASSERT_EQ(::read(ready[0], buf, 2), 2);
  ::usleep(400 * 1000);
  ::kill(child, SIGINT);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 42) << "the conversion was not interrupted";
  EXPECT_EQ(read_file(out), "previous image");
  size_t files = 0;
  for (auto& e : fs::directory_iterator(out.parent_path())) (void)e, ++files;
  EXPECT_EQ(files, 1u);
}
