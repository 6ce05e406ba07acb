// SHA-256 against the FIPS 180-2 vectors (one block, two blocks, a million bytes), fed whole
// and in pieces that straddle the 64-byte blocks, and over a file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "nemokit/runtime/sha256.hpp"

using namespace nemokit::rt;
namespace fs = std::filesystem;

TEST(runtime_sha256, KnownVectors) {
  EXPECT_EQ(Sha256::digest_of(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::digest_of("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(Sha256::digest_of(million), "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  std::cout << "SHA extensions " << (Sha256::hardware_accelerated() ? "used" : "not available") << "\n";
}

TEST(runtime_sha256, PiecewiseEqualsWhole) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(char(i * 31 + (i >> 7)));
  std::string whole = Sha256::digest_of(data);
  for (size_t step : {1u, 7u, 63u, 64u, 65u, 4096u}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += step) h.update(data.data() + i, std::min(step, data.size() - i));
    EXPECT_EQ(h.finish_digest(), whole) << "step " << step;
  }
}

TEST(runtime_sha256, HexFormsAndFiles) {
  Sha256 h;
  h.update(std::string_view("ab"));
  h.update(std::string_view("c"));
  EXPECT_EQ(h.finish_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  const fs::path dir = fs::path(NEMOKIT_BINARY_DIR) / "runtime_sha256_test";
  fs::create_directories(dir);
  const fs::path file = dir / "million_a.txt";
  std::ofstream(file, std::ios::binary) << std::string(1000000, 'a');
  EXPECT_EQ(sha256_file(file), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  try {
    sha256_file(dir / "missing");
    FAIL() << "no error for a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "missing").string()), std::string::npos) << e.what();
  }
}

TEST(runtime_sha256, DigestForm) {
  EXPECT_TRUE(is_sha256_digest(Sha256::digest_of("abc")));
  const std::string hex(64, 'a');
  EXPECT_TRUE(is_sha256_digest("sha256:" + hex));
  EXPECT_FALSE(is_sha256_digest(hex));                              // no algorithm
  EXPECT_FALSE(is_sha256_digest("sha512:" + hex));
  EXPECT_FALSE(is_sha256_digest("sha256:" + hex.substr(1)));        // 63 digits
  EXPECT_FALSE(is_sha256_digest("sha256:" + hex + "a"));            // 65 digits
  EXPECT_FALSE(is_sha256_digest("sha256:" + std::string(64, 'A')));  // OCI digests are lowercase
  EXPECT_FALSE(is_sha256_digest("sha256:../" + hex.substr(3)));      // never a path
  EXPECT_FALSE(is_sha256_digest(""));
}
