// rt::media images: PNG/JPEG decoding of every PNG colour type, bit depth and interlacing (files
// written by libpng/libjpeg here, and Debian's Adwaita icons checked against libpng's own
// simplified reader), clear errors for bad files, bilinear resizing against hand-computed values
// and torch (fixtures/bilinear, from make_bilinear_fixture.py), InternVL's tiling and video frames.
#include "image_files.hpp"

#include "nemokit/runtime/media/image.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>
#include <zlib.h>

namespace fs = std::filesystem;
namespace media = nemokit::rt::media;
using image_files::encode_jpeg;
using image_files::encode_png;
using image_files::pack_rows;
using image_files::PngSpec;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "nemokit-image-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path write(const std::string& name, const std::string& bytes) const {
    fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The message of the std::runtime_error that `f` throws ("" when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::vector<uint8_t> gray_to_rgb(const std::vector<int>& gray) {
  std::vector<uint8_t> rgb;
  for (int v : gray) rgb.insert(rgb.end(), {uint8_t(v), uint8_t(v), uint8_t(v)});
  return rgb;
}

std::vector<int> ramp(int n, int modulo, int step = 37) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = (i * step + 11) % modulo;
  return v;
}

media::Image decode(const std::string& bytes) { return media::decode_image(bytes, "test.png"); }

// ---------------------------------------------------------------------------------------------
// PNG colour types and bit depths

TEST(runtime_image, PngGray8AndLowBitDepthsExpandToRgb) {
  const int w = 7, h = 5;
  for (int depth : {1, 2, 4, 8}) {
    const std::vector<int> v = ramp(w * h, 1 << depth);
    PngSpec s{w, h, PNG_COLOR_TYPE_GRAY, depth, false, pack_rows(v, w, h, depth)};
    media::Image img = decode(encode_png(s));
    ASSERT_EQ(img.width, w);
    ASSERT_EQ(img.height, h);
    std::vector<int> scaled;
    for (int x : v) scaled.push_back(x * 255 / ((1 << depth) - 1));  // 1-bit: 0/255, 2-bit: *85, 4-bit: *17
    EXPECT_EQ(img.rgb, gray_to_rgb(scaled)) << depth << "-bit gray";
  }
}

TEST(runtime_image, PngGrayAlphaDropsAlpha) {
  const int w = 6, h = 4;
  std::vector<uint8_t> rows;
  std::vector<int> gray = ramp(w * h, 256);
  for (size_t i = 0; i < gray.size(); ++i) rows.insert(rows.end(), {uint8_t(gray[i]), uint8_t(i * 50 % 256)});
  media::Image img = decode(encode_png({w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, rows}));
  EXPECT_EQ(img.rgb, gray_to_rgb(gray));
}

TEST(runtime_image, PngPaletteWithTransparencyGivesThePaletteColours) {
  const int w = 9, h = 3;
  std::vector<png_color> palette;
  for (int i = 0; i < 16; ++i) palette.push_back({uint8_t(i * 16), uint8_t(255 - i * 7), uint8_t(i * i)});
  for (int depth : {4, 8}) {
    const std::vector<int> index = ramp(w * h, 16, 5);
    PngSpec s{w, h, PNG_COLOR_TYPE_PALETTE, depth, false, pack_rows(index, w, h, depth), palette, {0, 128, 255, 7}};
    media::Image img = decode(encode_png(s));
    std::vector<uint8_t> want;
    for (int i : index) want.insert(want.end(), {palette[size_t(i)].red, palette[size_t(i)].green, palette[size_t(i)].blue});
    EXPECT_EQ(img.rgb, want) << depth << "-bit palette";
  }
}

TEST(runtime_image, PngTransparentColourKeysAreIgnored) {
  const int w = 6, h = 2;
  const std::vector<int> v = ramp(w * h, 4);
  PngSpec gray{w, h, PNG_COLOR_TYPE_GRAY, 2, false, pack_rows(v, w, h, 2)};
  gray.has_transparent_colour = true;
  gray.transparent_colour.gray = 1;
  std::vector<int> scaled;
  for (int x : v) scaled.push_back(x * 85);
  EXPECT_EQ(decode(encode_png(gray)).rgb, gray_to_rgb(scaled));
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h * 3; ++i) rgb.push_back(uint8_t(i % 2 ? 10 : 20));
  PngSpec keyed{w, h, PNG_COLOR_TYPE_RGB, 8, false, rgb};
  keyed.has_transparent_colour = true;
  keyed.transparent_colour.red = 20, keyed.transparent_colour.green = 10, keyed.transparent_colour.blue = 20;
  EXPECT_EQ(decode(encode_png(keyed)).rgb, rgb);
}

TEST(runtime_image, PngRgbAndRgbaKeepTheColourChannels) {
  const int w = 5, h = 4;
  std::vector<uint8_t> rgb, rgba;
  for (int i = 0; i < w * h; ++i) {
    const uint8_t r = uint8_t(i * 13), g = uint8_t(255 - i * 9), b = uint8_t(i * i);
    rgb.insert(rgb.end(), {r, g, b});
    rgba.insert(rgba.end(), {r, g, b, uint8_t(i % 2 ? 0 : 200)});  // transparent pixels keep their colour
  }
  EXPECT_EQ(decode(encode_png({w, h, PNG_COLOR_TYPE_RGB, 8, false, rgb})).rgb, rgb);
  EXPECT_EQ(decode(encode_png({w, h, PNG_COLOR_TYPE_RGB_ALPHA, 8, false, rgba})).rgb, rgb);
}

TEST(runtime_image, Png16BitKeepsTheHighByte) {
  const int w = 4, h = 3;
  std::vector<uint8_t> rgb16, rgb8, gray16, gray8;
  for (int i = 0; i < w * h; ++i) {
    for (int c = 0; c < 3; ++c) {
      const int v = (i * 4099 + c * 17000 + 255) % 65536;  // low bytes differ from high bytes
      rgb16.insert(rgb16.end(), {uint8_t(v >> 8), uint8_t(v & 255)});
      rgb8.push_back(uint8_t(v >> 8));
    }
    const int g = (i * 5003 + 129) % 65536;
    gray16.insert(gray16.end(), {uint8_t(g >> 8), uint8_t(g & 255), 0x12, 0x34});  // + 16-bit alpha
    gray8.insert(gray8.end(), {uint8_t(g >> 8), uint8_t(g >> 8), uint8_t(g >> 8)});
  }
  EXPECT_EQ(decode(encode_png({w, h, PNG_COLOR_TYPE_RGB, 16, false, rgb16})).rgb, rgb8);
  EXPECT_EQ(decode(encode_png({w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, gray16})).rgb, gray8);
}

TEST(runtime_image, InterlacedPngsDecodeLikeTheirPlainTwins) {
  const int w = 13, h = 11;  // not multiples of Adam7's 8x8 pattern
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h * 3; ++i) rgb.push_back(uint8_t(i * 7 + i / 3));
  const std::string plain = encode_png({w, h, PNG_COLOR_TYPE_RGB, 8, false, rgb});
  const std::string adam7 = encode_png({w, h, PNG_COLOR_TYPE_RGB, 8, true, rgb});
  ASSERT_NE(plain, adam7);
  EXPECT_EQ(decode(adam7).rgb, rgb);
  const std::vector<int> v = ramp(w * h, 4);
  media::Image gray2 = decode(encode_png({w, h, PNG_COLOR_TYPE_GRAY, 2, true, pack_rows(v, w, h, 2)}));
  std::vector<int> scaled;
  for (int x : v) scaled.push_back(x * 85);
  EXPECT_EQ(gray2.rgb, gray_to_rgb(scaled));
}

TEST(runtime_image, TheFormatComesFromTheBytesNotTheName) {
  TempDir dir;
  std::vector<uint8_t> rgb(2 * 2 * 3, 77);
  fs::path p = dir.write("really_a_png.jpg", encode_png({2, 2, PNG_COLOR_TYPE_RGB, 8, false, rgb}));
  EXPECT_EQ(media::read_image(p).rgb, rgb);
  std::vector<uint8_t> gray(8 * 8, 128);
  fs::path j = dir.write("really_a_jpeg.png", encode_jpeg(8, 8, 1, JCS_GRAYSCALE, gray));
  EXPECT_EQ(media::read_image(j).width, 8);
}

// ---------------------------------------------------------------------------------------------
// JPEG

TEST(runtime_image, JpegRoundTripsWithinJpegTolerance) {
  const int w = 64, h = 48;
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rgb.insert(rgb.end(), {uint8_t(x * 4), uint8_t(y * 5), uint8_t(128 + (x - y))});
  media::Image img = decode(encode_jpeg(w, h, 3, JCS_RGB, rgb, 95));
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < rgb.size(); ++i) {
    const int d = std::abs(int(img.rgb[i]) - int(rgb[i]));
    sum += d;
    worst = std::max(worst, d);
  }
  EXPECT_LT(sum / double(rgb.size()), 2.0);
  EXPECT_LE(worst, 16);

  std::vector<uint8_t> gray;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) gray.push_back(uint8_t((x * 3 + y * 2) % 256));
  media::Image g = decode(encode_jpeg(w, h, 1, JCS_GRAYSCALE, gray, 95));
  double gsum = 0;
  for (size_t i = 0; i < gray.size(); ++i) {
    ASSERT_EQ(g.rgb[3 * i], g.rgb[3 * i + 1]);
    ASSERT_EQ(g.rgb[3 * i], g.rgb[3 * i + 2]);
    gsum += std::abs(int(g.rgb[3 * i]) - int(gray[i]));
  }
  EXPECT_LT(gsum / double(gray.size()), 2.0);
}

TEST(runtime_image, CmykJpegIsRefusedByName) {
  TempDir dir;
  std::vector<uint8_t> cmyk(16 * 16 * 4, 60);
  fs::path p = dir.write("print.jpg", encode_jpeg(16, 16, 4, JCS_CMYK, cmyk));
  const std::string e = error_of([&] { media::read_image(p); });
  EXPECT_NE(e.find(p.string()), std::string::npos) << e;
  EXPECT_NE(e.find("CMYK"), std::string::npos) << e;
}

// ---------------------------------------------------------------------------------------------
// Bad files: clear errors naming the file, never a crash

std::string small_png() {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 24 * 20 * 3; ++i) rgb.push_back(uint8_t(i * 31 % 251));
  return encode_png({24, 20, PNG_COLOR_TYPE_RGB, 8, false, rgb});
}

std::string small_jpeg() {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 40 * 24 * 3; ++i) rgb.push_back(uint8_t(i * 31 % 251));
  return encode_jpeg(40, 24, 3, JCS_RGB, rgb, 90);
}

TEST(runtime_image, TruncatedFilesAreRefusedAsTruncated) {
  TempDir dir;
  for (const auto& [name, bytes] : {std::pair{"cut.png", small_png()}, std::pair{"cut.jpg", small_jpeg()}}) {
    fs::path p = dir.write(name, bytes.substr(0, bytes.size() * 2 / 3));
    const std::string e = error_of([&] { media::read_image(p); });
    EXPECT_EQ(e.rfind(p.string() + ": ", 0), 0u) << e;
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  }
}

TEST(runtime_image, EveryPrefixOfAFileIsRefusedWithoutCrashing) {
  for (const std::string& bytes : {small_png(), small_jpeg()}) {
    ASSERT_NO_THROW(decode(bytes));
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string e = error_of([&] { decode(bytes.substr(0, n)); });
      ASSERT_EQ(e.rfind("test.png: ", 0), 0u) << "prefix of " << n << " bytes: '" << e << "'";
    }
  }
}

TEST(runtime_image, CorruptBytesDecodeOrFailCleanly) {
  std::mt19937 rng(7);
  for (const std::string& good : {small_png(), small_jpeg()}) {
    int refused = 0;
    for (int trial = 0; trial < 300; ++trial) {
      std::string bytes = good;
      for (int k = 0; k < 4; ++k) bytes[rng() % bytes.size()] = char(rng() & 255);
      try {
        media::Image img = decode(bytes);
        ASSERT_EQ(img.rgb.size(), size_t(img.width) * size_t(img.height) * 3);
      } catch (const std::runtime_error& e) {
        ASSERT_EQ(std::string(e.what()).rfind("test.png: ", 0), 0u) << e.what();
        ++refused;
      }
    }
    EXPECT_GT(refused, 0);
  }
}

TEST(runtime_image, PngChecksumErrorsAreReported) {
  TempDir dir;
  std::string bytes = small_png();
  bytes[20] ^= 0x01;  // inside IHDR's data: its CRC no longer matches
  fs::path p = dir.write("crc.png", bytes);
  const std::string e = error_of([&] { media::read_image(p); });
  EXPECT_EQ(e.rfind(p.string() + ": cannot decode PNG: ", 0), 0u) << e;
  EXPECT_NE(e.find("CRC"), std::string::npos) << e;
}

// An otherwise valid PNG/JPEG header for a 9000x9000 image: refused from the header.
TEST(runtime_image, OversizedImagesAreRefusedBeforeDecoding) {
  TempDir dir;
  // A small PNG whose IHDR (width, height and CRC) is rewritten to say 9000x9000.
  std::string png = small_png();
  auto put32 = [](std::string& s, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) s[at + size_t(i)] = char((v >> (24 - 8 * i)) & 255);
  };
  put32(png, 16, 9000);
  put32(png, 20, 9000);
  put32(png, 29, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
  fs::path p = dir.write("huge.png", png);
  std::string e = error_of([&] { media::read_image(p); });
  EXPECT_EQ(e.rfind(p.string() + ": ", 0), 0u) << e;
  EXPECT_NE(e.find("9000x9000"), std::string::npos) << e;
  EXPECT_NE(e.find("more than"), std::string::npos) << e;

  std::string jpg = small_jpeg();
  size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  jpg[sof + 5] = char(9000 >> 8), jpg[sof + 6] = char(9000 & 255);  // height
  jpg[sof + 7] = char(9000 >> 8), jpg[sof + 8] = char(9000 & 255);  // width
  fs::path q = dir.write("huge.jpg", jpg);
  e = error_of([&] { media::read_image(q); });
  EXPECT_EQ(e.rfind(q.string() + ": ", 0), 0u) << e;
  EXPECT_NE(e.find("9000x9000"), std::string::npos) << e;
}

TEST(runtime_image, NonImagesAndMissingFilesAreNamed) {
  TempDir dir;
  fs::path text = dir.write("notes.png", "hello, this is text\n");
  std::string e = error_of([&] { media::read_image(text); });
  EXPECT_EQ(e, text.string() + ": not a PNG or JPEG image (it starts with 68 65 6c 6c 6f 2c 20 74)");
  fs::path empty = dir.write("empty.jpg", "");
  e = error_of([&] { media::read_image(empty); });
  EXPECT_EQ(e, empty.string() + ": empty file, not an image");
  e = error_of([&] { media::read_image(dir.path() / "absent.png"); });
  EXPECT_EQ(e.rfind((dir.path() / "absent.png").string() + ": cannot open image", 0), 0u) << e;
  e = error_of([&] { media::read_image(dir.path()); });
  EXPECT_EQ(e, dir.path().string() + ": not a regular file, not an image");
  // A JPEG signature followed by garbage.
  fs::path junk = dir.write("junk.jpg", std::string("\xFF\xD8\xFF\xE0", 4) + std::string(50, 'x'));
  e = error_of([&] { media::read_image(junk); });
  EXPECT_EQ(e.rfind(junk.string() + ": cannot decode JPEG: ", 0), 0u) << e;
}

// ---------------------------------------------------------------------------------------------
// Debian's Adwaita icons (RGBA PNGs), against libpng's simplified reader

TEST(runtime_image, AdwaitaIconsDecodeLikeLibpngsSimplifiedReader) {
  const fs::path root = "/usr/share/icons/Adwaita";
  if (!fs::is_directory(root)) GTEST_SKIP() << root << " is not installed (adwaita-icon-theme)";
  int checked = 0;
  for (int size : {16, 24, 48, 64, 256, 512}) {
    const fs::path dir = root / (std::to_string(size) + "x" + std::to_string(size));
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> icons;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".png") icons.push_back(e.path());
    std::sort(icons.begin(), icons.end());
    if (icons.size() > 4) icons.resize(4);
    for (const fs::path& icon : icons) {
      media::Image img = media::read_image(icon);
      EXPECT_EQ(img.width, size) << icon;
      EXPECT_EQ(img.height, size) << icon;
      png_image ref{};
      ref.version = PNG_IMAGE_VERSION;
      ASSERT_TRUE(png_image_begin_read_from_file(&ref, icon.c_str())) << icon << ": " << ref.message;
      ref.format = PNG_FORMAT_RGBA;
      std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(ref));
      ASSERT_TRUE(png_image_finish_read(&ref, nullptr, rgba.data(), 0, nullptr)) << icon << ": " << ref.message;
      ASSERT_EQ(rgba.size(), size_t(size) * size * 4);
      std::vector<uint8_t> want;
      for (size_t i = 0; i < rgba.size(); i += 4) want.insert(want.end(), {rgba[i], rgba[i + 1], rgba[i + 2]});
      EXPECT_EQ(img.rgb, want) << icon;
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
}

// ---------------------------------------------------------------------------------------------
// Bilinear resizing

media::Image one_channel(int w, int h, const std::vector<int>& v) {
  media::Image img{w, h, gray_to_rgb(v)};
  return img;
}

std::vector<int> red(const media::Image& img) {
  std::vector<int> v;
  for (size_t i = 0; i < img.rgb.size(); i += 3) v.push_back(img.rgb[i]);
  return v;
}

TEST(runtime_image, BilinearMatchesHandComputedValues) {
  // 2 -> 4: source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge).
  EXPECT_EQ(red(media::resize_bilinear(one_channel(2, 1, {0, 100}), 4, 1)), (std::vector<int>{0, 25, 75, 100}));
  // 4 -> 2: source x = 0.5, 2.5: no antialiasing, only the two neighbours count.
  EXPECT_EQ(red(media::resize_bilinear(one_channel(4, 1, {0, 40, 80, 120}), 2, 1)), (std::vector<int>{20, 100}));
  // 2x2 -> 3x3: source 0 (clamped), 0.5, 1.1667 (edge) on both axes; 87.5 rounds to 88.
  EXPECT_EQ(red(media::resize_bilinear(one_channel(2, 2, {0, 100, 200, 50}), 3, 3)),
            (std::vector<int>{0, 50, 100, 100, 88, 75, 200, 125, 50}));
  media::Image same = one_channel(2, 2, {1, 2, 3, 4});
  EXPECT_EQ(media::resize_bilinear(same, 2, 2).rgb, same.rgb);
  EXPECT_THROW(media::resize_bilinear(same, 0, 3), std::invalid_argument);
  EXPECT_THROW(media::resize_bilinear(media::Image{3, 3, {}}, 2, 2), std::invalid_argument);
}

TEST(runtime_image, BilinearMatchesTorchInterpolate) {
  std::ifstream in(fs::path(NEMOKIT_SOURCE_DIR) / "tests/runtime/fixtures/bilinear/resize_bilinear.json");
  ASSERT_TRUE(in) << "fixtures/bilinear/resize_bilinear.json missing (make_bilinear_fixture.py)";
  const nlohmann::json fixture = nlohmann::json::parse(in);
  ASSERT_GE(fixture["cases"].size(), 5u);
  for (const auto& c : fixture["cases"]) {
    media::Image img{c["in_w"].get<int>(), c["in_h"].get<int>(), c["input"].get<std::vector<uint8_t>>()};
    const int w = c["out_w"], h = c["out_h"];
    const auto expected = c["expected"].get<std::vector<float>>();
    media::Image out = media::resize_bilinear(img, w, h);
    ASSERT_EQ(out.rgb.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_LE(std::fabs(float(out.rgb[i]) - expected[i]), 0.5f + 1e-3f)
          << img.width << "x" << img.height << " -> " << w << "x" << h << " at " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// InternVL's dynamic tiling

TEST(runtime_image, TileGridsFollowInternVL) {
  // Expected grids computed with InternVL's dynamic_preprocess / find_closest_aspect_ratio.
  struct Case {
    int w, h, min_tiles, max_tiles, tile;
    std::array<int, 2> grid;
  };
  const Case cases[] = {
      {448, 448, 1, 12, 448, {1, 1}},    // (2,2) ties on ratio, but the image is not > half its area
      {800, 800, 1, 12, 448, {2, 2}},    // ... now it is; (3,3) needs more than 903,168 pixels
      {1000, 1000, 1, 12, 448, {3, 3}},  // ... and now that too
      {1920, 1080, 1, 12, 448, {4, 2}},  // 16:9: 2/1 and 4/2 tie, the larger wins
      {1080, 1920, 1, 12, 448, {2, 4}},
      {640, 480, 1, 12, 448, {4, 3}},
      {100, 300, 1, 12, 448, {1, 3}},    // small: (2,6) ties but the image is tiny
      {300, 100, 1, 12, 448, {3, 1}},
      {3000, 200, 1, 12, 448, {12, 1}},  // as wide as the cap allows
      {448, 448, 2, 12, 448, {2, 2}},    // min_tiles excludes 1x1
      {500, 1000, 1, 6, 448, {1, 2}},
      {1000, 800, 2, 2, 448, {2, 1}},    // 1x2 and 2x1 equally far from 1.25: the later, larger-area rule
  };
  for (const Case& c : cases) {
    media::TileOptions o;
    o.min_tiles = c.min_tiles;
    o.max_tiles = c.max_tiles;
    o.tile_size = c.tile;
    EXPECT_EQ(media::choose_tile_grid(c.w, c.h, o), c.grid) << c.w << "x" << c.h;
  }
}

media::Image pattern(int w, int h) {
  media::Image img{w, h, {}};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      img.rgb.insert(img.rgb.end(), {uint8_t(x * 255 / w), uint8_t(y * 255 / h), uint8_t((x * 7 + y * 13) % 256)});
  return img;
}

float norm(uint8_t v, int c, const media::TileOptions& o) { return (float(v) / 255.0f - o.mean[c]) / o.std[c]; }

// Tile k of `tiles` equals the normalized block of `src` at (x0, y0).
void expect_tile(const media::Tiles& tiles, int64_t k, const media::Image& src, int x0, int y0,
                 const media::TileOptions& o) {
  const int t = tiles.tile_size;
  const float* p = tiles.pixels.data() + size_t(k) * 3 * size_t(t) * size_t(t);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < t; ++y)
      for (int x = 0; x < t; ++x) {
        const uint8_t v = src.rgb[(size_t(y0 + y) * size_t(src.width) + size_t(x0 + x)) * 3 + size_t(c)];
        ASSERT_EQ(p[(size_t(c) * size_t(t) + size_t(y)) * size_t(t) + size_t(x)], norm(v, c, o))
            << "tile " << k << " c" << c << " (" << x << "," << y << ")";
      }
}

TEST(runtime_image, TilesAreTheResizedImagesBlocksPlusAThumbnail) {
  media::TileOptions o;
  o.tile_size = 32;
  o.max_tiles = 6;
  const media::Image img = pattern(150, 50);  // aspect 3 -> a 3x1 grid
  const media::Tiles tiles = media::tile_image(img, o);
  ASSERT_EQ(tiles.grid_w, 3);
  ASSERT_EQ(tiles.grid_h, 1);
  ASSERT_EQ(tiles.count, 4);
  ASSERT_EQ(tiles.tile_size, 32);
  ASSERT_EQ(tiles.pixels.size(), size_t(4 * 3 * 32 * 32));
  const media::Image resized = media::resize_bilinear(img, 96, 32);
  for (int k = 0; k < 3; ++k) expect_tile(tiles, k, resized, k * 32, 0, o);
  expect_tile(tiles, 3, media::resize_bilinear(img, 32, 32), 0, 0, o);

  // 2x2 grid: row-major order.
  const media::Image square = pattern(70, 70);
  const media::Tiles grid = media::tile_image(square, o);
  ASSERT_EQ(grid.grid_w * grid.grid_h, 4);
  ASSERT_EQ(grid.count, 5);
  const media::Image r2 = media::resize_bilinear(square, 64, 64);
  expect_tile(grid, 0, r2, 0, 0, o);
  expect_tile(grid, 1, r2, 32, 0, o);
  expect_tile(grid, 2, r2, 0, 32, o);
  expect_tile(grid, 3, r2, 32, 32, o);

  o.thumbnail = false;
  EXPECT_EQ(media::tile_image(img, o).count, 3);
  o.thumbnail = true;
  const media::Tiles single = media::tile_image(pattern(30, 30), o);  // one tile: no thumbnail
  EXPECT_EQ(single.count, 1);
  expect_tile(single, 0, media::resize_bilinear(pattern(30, 30), 32, 32), 0, 0, o);
  // The normalization itself, for white.
  const media::Tiles white = media::tile_image(media::Image{1, 1, {255, 255, 255}}, o);
  EXPECT_FLOAT_EQ(white.pixels[0], (1.0f - 0.485f) / 0.229f);
  EXPECT_FLOAT_EQ(white.pixels[size_t(32 * 32)], (1.0f - 0.456f) / 0.224f);
  EXPECT_FLOAT_EQ(white.pixels[size_t(2 * 32 * 32)], (1.0f - 0.406f) / 0.225f);
}

TEST(runtime_image, BadTileOptionsAreRefused) {
  media::TileOptions o;
  o.min_tiles = 0;
  EXPECT_THROW(media::choose_tile_grid(10, 10, o), std::invalid_argument);
  o = {};
  o.max_tiles = 0;
  EXPECT_THROW(media::choose_tile_grid(10, 10, o), std::invalid_argument);
  o = {};
  o.std[1] = 0;
  EXPECT_THROW(media::tile_image(pattern(4, 4), o), std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Video

TEST(runtime_image, VideoSamplingPicksFramesAtTheRate) {
  media::VideoOptions v;  // 2 fps, at most 8
  // 30 fps, 61 frames (2.03 s): t = 0, 0.5, 1, 1.5, 2 -> frames 0, 15, 30, 45, 60.
  EXPECT_EQ(media::sample_video_frames(61, 30, v), (std::vector<int64_t>{0, 15, 30, 45, 60}));
  // 29.97 fps: t * 29.97 floored.
  EXPECT_EQ(media::sample_video_frames(60, 29.97, v), (std::vector<int64_t>{0, 14, 29, 44, 59}));
  // 10 fps, 20 frames at 2 fps: 0, 5, 10, 15; capped at 3: positions 0, round(1.5) = 2, 3.
  EXPECT_EQ(media::sample_video_frames(20, 10, v), (std::vector<int64_t>{0, 5, 10, 15}));
  v.max_frames = 3;
  EXPECT_EQ(media::sample_video_frames(20, 10, v), (std::vector<int64_t>{0, 10, 15}));
  v.max_frames = 1;
  EXPECT_EQ(media::sample_video_frames(20, 10, v), (std::vector<int64_t>{0}));
  // Sampling as fast as the source or faster: every frame, then spread over max_frames.
  v.fps = 4;
  v.max_frames = 8;
  EXPECT_EQ(media::sample_video_frames(5, 4, v), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(media::sample_video_frames(15, 4, v), (std::vector<int64_t>{0, 2, 4, 6, 8, 10, 12, 14}));
  EXPECT_TRUE(media::sample_video_frames(0, 4, v).empty());
  v.fps = 0;
  EXPECT_THROW(media::sample_video_frames(5, 4, v), std::invalid_argument);
}

// A 16x16 gray frame with a white 4x4 square whose left edge is at x.
std::string square_frame(int x) {
  std::vector<int> v(16 * 16, 30);
  for (int y = 6; y < 10; ++y)
    for (int dx = 0; dx < 4; ++dx) v[size_t(y * 16 + x + dx)] = 250;
  return encode_png({16, 16, PNG_COLOR_TYPE_GRAY, 8, false, pack_rows(v, 16, 16, 8)});
}

TEST(runtime_image, VideoTilesAreFramesAndEvsDropsRepeats) {
  TempDir dir;
  // Frames 0-1 the same, 2-3 the same but moved by 4 pixels, 4 moved by one more pixel.
  const int xs[] = {0, 0, 4, 4, 5};
  std::vector<fs::path> frames;
  for (int k = 0; k < 5; ++k) frames.push_back(dir.write("frame_0" + std::to_string(k) + ".png", square_frame(xs[k])));
  media::TileOptions o;
  o.tile_size = 8;
  media::VideoOptions v;
  v.fps = 4;  // = the source rate: every frame
  std::vector<int64_t> kept;
  media::Tiles all = media::video_tiles(frames, 4, v, o, &kept);
  EXPECT_EQ(kept, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(all.count, 5);
  EXPECT_EQ(all.grid_w, 1);
  EXPECT_EQ(all.grid_h, 1);
  ASSERT_EQ(all.pixels.size(), size_t(5 * 3 * 8 * 8));
  for (int k = 0; k < 5; ++k) expect_tile(all, k, media::resize_bilinear(media::read_image(frames[size_t(k)]), 8, 8), 0, 0, o);

  v.evs_threshold = 0.01;
  media::Tiles evs = media::video_tiles(frames, 4, v, o, &kept);
  EXPECT_EQ(kept, (std::vector<int64_t>{0, 2, 4}));  // exact repeats dropped, the frame that moved kept
  ASSERT_EQ(evs.count, 3);
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(std::equal(evs.pixels.begin() + i * 192, evs.pixels.begin() + (i + 1) * 192,
                           all.pixels.begin() + kept[size_t(i)] * 192));
  // A threshold above the one-pixel move's difference drops that frame too.
  v.evs_threshold = 5.0;
  media::video_tiles(frames, 4, v, o, &kept);
  EXPECT_EQ(kept, (std::vector<int64_t>{0}));

  frames[3] = dir.path() / "missing.png";
  v.evs_threshold = 0;
  const std::string e = error_of([&] { media::video_tiles(frames, 4, v, o, &kept); });
  EXPECT_NE(e.find("missing.png"), std::string::npos) << e;
  EXPECT_THROW(media::video_tiles({}, 4, v, o, nullptr), std::invalid_argument);
}

}  // namespace
