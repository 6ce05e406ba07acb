// Image formats: OCI layout, oci-archive, docker save (old and new layouts) and
// a real buildah-made image must all convert, and the same image must give the
// same bytes whatever the container format.
#include <gtest/gtest.h>

#include <fstream>

#include "nemokit/oci/convert.hpp"
#include "nemokit/oci/error.hpp"
#include "nemokit/oci/image_cli.hpp"
#include "oci_test_support.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

using nemokit::test::read_file;

using namespace ocitest;
namespace oci = nemokit::oci;

namespace {

oci::ConvertOptions quiet_options() {
  oci::ConvertOptions o;
  o.handle_signals = false;
  return o;
}

std::vector<LayerBlob> sample_layers(const std::string& compression) {
  return {{tar_of_paths("/", {"usr/share/doc/bash", "usr/share/doc/tar"}), compression},
          {make_tar({file_entry("usr/share/doc/bash/.wh.README", ""), file_entry("hello", "hello\n", 0755)}), compression}};
}

}  // namespace

TEST(oci_formats, DockerArchiveAndOciLayoutGiveTheSameBytes) {
  fs::path work = scratch_dir("samebytes");
  auto layers = sample_layers("none");
  auto config = default_config(layers);
  fs::path layout = write_oci_layout(work / "oci", layers, config, "v1");
  fs::path docker = write_docker_archive(work / "docker.tar", layers, config, "sample:v1");
  tar_directory(layout, work / "oci.tar");

  oci::convert_image("oci:" + layout.string() + ":v1", work / "a.sqsh", quiet_options());
  oci::convert_image("docker-archive:" + docker.string(), work / "b.sqsh", quiet_options());
  oci::convert_image("oci-archive:" + (work / "oci.tar").string(), work / "c.sqsh", quiet_options());
  oci::convert_image((work / "docker.tar").string(), work / "d.sqsh", quiet_options());  // detected
  oci::convert_image("oci:" + layout.string(), work / "e.sqsh", quiet_options());        // a second run
  std::string a = read_file(work / "a.sqsh");
  ASSERT_GT(a.size(), 4096u);
  EXPECT_TRUE(a == read_file(work / "b.sqsh"));
  EXPECT_TRUE(a == read_file(work / "c.sqsh"));
  EXPECT_TRUE(a == read_file(work / "d.sqsh"));
  EXPECT_TRUE(a == read_file(work / "e.sqsh"));
  // Compressed layers hold the same tars, so the image is the same too. (The same tars, not
  // a second `tar` of the host files: its pax headers carry atimes that reading changes.)
  auto gz_layers = layers;
  for (auto& l : gz_layers) l.compression = "gzip";
  fs::path gz = write_oci_layout(work / "oci-gz", gz_layers, config, "v1");
  oci::convert_image("oci:" + gz.string(), work / "f.sqsh", quiet_options());
  EXPECT_TRUE(a == read_file(work / "f.sqsh"));
}

// Docker 25+ writes `docker save` with the layers and config under blobs/sha256
// (plus an OCI index); its manifest.json must be read the same way.
TEST(oci_formats, DockerSaveNewLayout) {
  fs::path work = scratch_dir("docker25");
  auto layers = sample_layers("none");
  auto config = default_config(layers);
  std::string cfg = config.dump();
  std::vector<TarEntry> entries = {dir_entry("blobs"), dir_entry("blobs/sha256")};
  nlohmann::json names = nlohmann::json::array();
  for (auto& l : layers) {
    std::string path = "blobs/sha256/" + sha256(l.tar).substr(7);
    entries.push_back(file_entry(path, l.tar));
    names.push_back(path);
  }
  std::string cfg_path = "blobs/sha256/" + sha256(cfg).substr(7);
  entries.push_back(file_entry(cfg_path, cfg));
  nlohmann::json manifest = nlohmann::json::array({{{"Config", cfg_path}, {"RepoTags", {"sample:v1"}}, {"Layers", names}}});
  entries.push_back(file_entry("manifest.json", manifest.dump()));
  { std::ofstream(work / "docker25.tar", std::ios::binary) << make_tar(entries); }

  fs::path layout = write_oci_layout(work / "oci", layers, config, "v1");
  oci::convert_image("oci:" + layout.string(), work / "a.sqsh", quiet_options());
  auto image = oci::open_image("docker-archive:" + (work / "docker25.tar").string() + ":v1");
  ASSERT_EQ(image.layers.size(), 2u);
  EXPECT_TRUE(image.layers[0].digest.has_value());  // known from the blob path, so checked too
  oci::convert_image(image, work / "b.sqsh", quiet_options());
  EXPECT_TRUE(read_file(work / "a.sqsh") == read_file(work / "b.sqsh"));
}

TEST(oci_formats, PicksTagOrPlatformAndExplainsAmbiguity) {
  fs::path work = scratch_dir("pick");
  auto layers = sample_layers("gzip");
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers), "v1");
  // Add a second tag pointing at another image.
  auto other_layers = std::vector<LayerBlob>{{make_tar({file_entry("other", "o")}), "gzip"}};
  fs::path other = write_oci_layout(work / "other", other_layers, default_config(other_layers), "v2");
  for (auto& e : fs::directory_iterator(other / "blobs/sha256"))
    fs::copy_file(e.path(), layout / "blobs/sha256" / e.path().filename(), fs::copy_options::skip_existing);
  auto index = nlohmann::json::parse(read_file(layout / "index.json"));
  index["manifests"].push_back(nlohmann::json::parse(read_file(other / "index.json"))["manifests"][0]);
  { std::ofstream(layout / "index.json") << index.dump(); }

  EXPECT_EQ(oci::open_image("oci:" + layout.string() + ":v2").layers.size(), 1u);
  EXPECT_EQ(oci::open_image("oci:" + layout.string() + ":v1").layers.size(), 2u);
  try {
    oci::open_image("oci:" + layout.string());
    FAIL() << "ambiguous layout accepted";
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("name one with :TAG"), std::string::npos) << e.what();
  }
  try {
    oci::open_image("oci:" + layout.string() + ":v3");
    FAIL();
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no image tagged 'v3' (tags: v1, v2)"), std::string::npos) << e.what();
  }

  // A multi-platform index: linux/amd64 is chosen.
  nlohmann::json platforms = {
      {"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", nlohmann::json::array()}};
  auto m1 = index["manifests"][0], m2 = index["manifests"][1];
  m1.erase("annotations");
  m2.erase("annotations");
  m1["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
  m2["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  platforms["manifests"] = {m1, m2};
  std::string p = platforms.dump();
  std::string pd = sha256(p);
  { std::ofstream(layout / "blobs/sha256" / pd.substr(7)) << p; }
  nlohmann::json top = {{"schemaVersion", 2},
                        {"manifests",
                         {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                           {"digest", pd},
                           {"size", p.size()},
                           {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  { std::ofstream(layout / "index.json") << top.dump(); }
  EXPECT_EQ(oci::open_image("oci:" + layout.string() + ":multi").layers.size(), 1u);  // the "other" image
}

TEST(oci_formats, CommandConvertInspectLs) {
  fs::path work = scratch_dir("cli");
  auto layers = sample_layers("zstd");
  fs::path layout = write_oci_layout(work / "oci", layers, default_config(layers));
  fs::path cache = work / "cache";
  fs::create_directories(cache / "containers");
  EXPECT_EQ(oci::image_command({"convert", "oci:" + layout.string(), (cache / "containers/x.sqsh").string(), "--comp", "gzip",
                                "--level", "6", "--block-size", "64K", "--mtime", "0"},
                               cache),
            0);
  EXPECT_TRUE(fs::exists(cache / "containers/x.sqsh"));
  EXPECT_EQ(oci::image_command({"inspect", "oci:" + layout.string()}, cache), 0);
  EXPECT_EQ(oci::image_command({"ls"}, cache), 0);
  EXPECT_EQ(oci::image_command({"convert", "oci:" + layout.string()}, cache), 2);
  EXPECT_EQ(oci::image_command({"convert", "a", "b", "--comp", "lzo"}, cache), 2);
  EXPECT_EQ(oci::image_command({"convert", "a", "b", "--level", "99"}, cache), 2);
  EXPECT_EQ(oci::image_command({"frobnicate"}, cache), 2);
  EXPECT_EQ(oci::image_command({"convert", (work / "missing").string(), (work / "y.sqsh").string()}, cache), 1);

  // Every name `image ls` lists can be inspected: x.sqsh came from image convert, so there is
  // only the squashfs to describe; an image the builder made has its OCI layout under oci/NAME.
  auto inspect = [&](const std::string& name, int* rc) {
    testing::internal::CaptureStdout();
    *rc = oci::image_command({"inspect", name}, cache);
    std::fflush(stdout);
    return testing::internal::GetCapturedStdout();
  };
  int rc = -1;
  std::string out = inspect("x", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("squashfs: " + (cache / "containers/x.sqsh").string() + " ("), std::string::npos) << out;
  EXPECT_NE(out.find("gzip, 64 K blocks"), std::string::npos) << out;
  EXPECT_NE(out.find("no OCI layout"), std::string::npos) << out;
  fs::create_directories(cache / "oci");
  fs::copy(layout, cache / "oci" / "x", fs::copy_options::recursive);
  nlohmann::json index = nlohmann::json::parse(read_file(cache / "oci/x/index.json"));
  index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "x";
  { std::ofstream(cache / "oci/x/index.json") << index.dump(); }
  out = inspect("x", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("tag:     x"), std::string::npos) << out;
  EXPECT_NE(out.find("layers:  " + std::to_string(layers.size())), std::string::npos) << out;
  EXPECT_NE(out.find("squashfs: "), std::string::npos) << out;
  EXPECT_EQ(oci::image_command({"inspect", "not-built"}, cache), 1);
}

// A real image made by buildah: the upper layer deletes files, which buildah
// records as whiteouts; pushed as an OCI layout, an oci-archive and a docker
// archive.
TEST(oci_formats, BuildahImageWithWhiteouts) {
  if (std::system("command -v buildah > /dev/null 2>&1") != 0) GTEST_SKIP() << "buildah is not installed";
  if (!running_as_root()) GTEST_SKIP() << "buildah needs root here";
  fs::path work = scratch_dir("buildah");
  fs::path root = work / "root";
  fs::create_directories(root / "data");
  fs::create_directories(root / "keep");
  fs::create_directories(root / "opaque/sub");
  { std::ofstream(root / "data/a") << "one"; }
  { std::ofstream(root / "data/b") << "two"; }
  { std::ofstream(root / "keep/k") << "k"; }
  { std::ofstream(root / "gone") << "gone"; }
  { std::ofstream(root / "opaque/sub/old") << "old"; }
  std::string storage =
      " --root '" + (work / "storage").string() + "' --runroot '" + (work / "run").string() + "' --storage-driver vfs";
  std::string script = "set -e; b() { buildah" + storage +
                       " \"$@\"; }; "
                       "c=$(b from scratch); b copy $c '" +
                       root.string() +
                       "' / >/dev/null; b commit -q $c base >/dev/null; "
                       "c2=$(b from base); m=$(b mount $c2); rm -rf $m/data/a $m/gone $m/opaque; mkdir -p $m/opaque; "
                       "echo new > $m/opaque/fresh; echo c > $m/data/c; b umount $c2 >/dev/null; b commit -q $c2 top >/dev/null; "
                       "b push -q top oci:'" +
                       (work / "oci").string() +
                       "':v1; "
                       "b push -q top oci-archive:'" +
                       (work / "oci.tar").string() +
                       "':v1; "
                       "b push -q top docker-archive:'" +
                       (work / "docker.tar").string() +
                       "':top:v1; "
                       "b rm -a >/dev/null; b rmi -a -f >/dev/null";
  { std::ofstream(work / "build.sh") << script << "\n"; }
  ASSERT_EQ(std::system(("bash '" + (work / "build.sh").string() + "'").c_str()), 0);
  oci::convert_image("oci:" + (work / "oci").string() + ":v1", work / "a.sqsh", quiet_options());
  oci::convert_image("oci-archive:" + (work / "oci.tar").string(), work / "b.sqsh", quiet_options());
  oci::convert_image("docker-archive:" + (work / "docker.tar").string(), work / "c.sqsh", quiet_options());
  std::string a = read_file(work / "a.sqsh");
  EXPECT_TRUE(a == read_file(work / "b.sqsh"));
  EXPECT_TRUE(a == read_file(work / "c.sqsh"));

  const std::string listing = nemokit::test::run({"unsquashfs", "-lls", "-d", "/", (work / "a.sqsh").string()}).out;
  EXPECT_NE(listing.find("/data/b"), std::string::npos) << listing;
  EXPECT_NE(listing.find("/data/c"), std::string::npos) << listing;
  EXPECT_NE(listing.find("/keep/k"), std::string::npos) << listing;
  EXPECT_NE(listing.find("/opaque/fresh"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("/data/a"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("/gone"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("/opaque/sub"), std::string::npos) << listing;
  EXPECT_EQ(listing.find(".wh."), std::string::npos) << listing;
}

// Old `docker save` stores a repeated layer once and links the other layer.tar
// to it; links must resolve inside the archive and nowhere else.
TEST(oci_formats, DockerSaveLayerSymlinksStayInside) {
  fs::path work = scratch_dir("dockerlinks");
  std::string layer = make_tar({file_entry("same", "same content")});
  nlohmann::json config = default_config({{layer, "none"}, {layer, "none"}});
  std::string cfg = config.dump();
  std::string cfg_name = sha256(cfg).substr(7) + ".json";
  auto archive = [&](const std::string& link_target) {
    std::vector<TarEntry> entries = {dir_entry("one"), file_entry("one/layer.tar", layer), dir_entry("two"),
                                     symlink_entry("two/layer.tar", link_target), file_entry(cfg_name, cfg)};
    nlohmann::json m = nlohmann::json::array(
        {{{"Config", cfg_name}, {"RepoTags", {"links:v1"}}, {"Layers", {"one/layer.tar", "two/layer.tar"}}}});
    entries.push_back(file_entry("manifest.json", m.dump()));
    return make_tar(entries);
  };
  { std::ofstream(work / "good.tar", std::ios::binary) << archive("../one/layer.tar"); }
  { std::ofstream(work / "evil.tar", std::ios::binary) << archive("../../../etc/passwd"); }

  auto image = oci::open_image("docker-archive:" + (work / "good.tar").string());
  ASSERT_EQ(image.layers.size(), 2u);
  EXPECT_EQ(image.layers[0].blob.offset, image.layers[1].blob.offset);
  oci::convert_image(image, work / "good.sqsh", quiet_options());
  try {
    oci::open_image("docker-archive:" + (work / "evil.tar").string());
    FAIL() << "a link out of the archive was followed";
  } catch (const oci::Error& e) {
    EXPECT_NE(std::string(e.what()).find("links outside the archive"), std::string::npos) << e.what();
  }
}
