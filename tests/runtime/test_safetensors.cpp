// The safetensors reader refuses damaged headers with errors naming file and tensor, and
// checkpoints refuse tensors the model does not have (or lacks).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/safetensors.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
namespace fs = std::filesystem;

namespace {

std::string scratch(const std::string& name) {
  return nemokit::rt::testing::scratch_path("runtime_safetensors_test", name);
}

// A file with a hand-written header and `data_bytes` zero bytes of data.
std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  std::string path = scratch(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

void expect_error(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsFile::open(path);
    FAIL() << "accepted " << path;
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

}  // namespace

TEST(runtime_safetensors, RoundTripKeepsDtypesShapesAndValues) {
  Tensor f = Tensor::empty({2, 3});
  for (int i = 0; i < 6; ++i) f.f32()[i] = 0.5f * i - 1.0f;
  Tensor b = f.to(DType::bf16);
  Tensor ids = Tensor::empty({4}, DType::i64);
  for (int i = 0; i < 4; ++i) ids.data<int64_t>()[i] = int64_t(1) << (40 + i);
  std::string path = scratch("round.safetensors");
  write_safetensors(path, {{"f", f}, {"b", b}, {"ids", ids}}, {{"format", "pt"}});
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  auto file = SafetensorsFile::open(path);
  EXPECT_EQ(file.metadata()["format"], "pt");
  Tensor f2 = file.load("f"), b2 = file.load_f32("b"), i2 = file.load("ids");
  EXPECT_EQ(f2.shape(), (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f2.f32()[i], f.f32()[i]);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b2.f32()[i], f.f32()[i]);  // these values are exact in bf16
  for (int i = 0; i < 4; ++i) EXPECT_EQ(i2.data<int64_t>()[i], ids.data<int64_t>()[i]);
  EXPECT_THROW(file.load("missing"), std::runtime_error);
  EXPECT_THROW(file.load_f32("ids"), std::runtime_error);
}

TEST(runtime_safetensors, DamagedHeadersAreRefusedWithTheirReason) {
  expect_error(raw_file("short.st", "", 0, 0).substr(0), "");  // empty header is not JSON
  {
    std::string path = scratch("tiny.st");
    std::ofstream(path) << "abc";
    expect_error(path, "too short");
  }
  expect_error(raw_file("len.st", "{}", 0, 4096), "runs past the end");
  expect_error(raw_file("huge.st", "{}", 0, int64_t(1) << 40), "100 MiB");
  expect_error(raw_file("json.st", "{\"a\": [", 0), "not valid JSON");
  expect_error(raw_file("dtype.st", R"({"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1), "tensor 'w'");
  expect_error(raw_file("past.st", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "data ends at byte 16");
  expect_error(raw_file("size.st", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16), "shape and dtype need 12");
  expect_error(raw_file("rev.st", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", 16), "reversed");
  expect_error(raw_file("neg.st", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 16), "non-negative");
  expect_error(raw_file("overlap.st",
                        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                        12),
               "overlap");
}

TEST(runtime_safetensors, CheckpointWithMissingOrForeignTensorsIsRefused) {
  NemotronH model(nemokit::rt::testing::tiny_config("M-"));
  model.init_weights(1);
  std::string dir = scratch("ckpt");
  save_pretrained(model, dir);
  // Drop one tensor.
  auto file = SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<NamedTensor> kept;
  for (const auto& e : file.entries())
    if (e.name != "backbone.layers.1.mixer.up_proj.weight") kept.emplace_back(e.name, file.load(e.name));
  write_safetensors(dir + "/model.safetensors", kept);
  try {
    load_pretrained(dir);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("backbone.layers.1.mixer.up_proj.weight"), std::string::npos) << e.what();
  }
  kept.emplace_back("backbone.layers.1.mixer.up_proj.weight", Tensor::zeros({3, 3}));
  write_safetensors(dir + "/model.safetensors", kept);
  try {
    load_pretrained(dir);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [3, 3]"), std::string::npos) << e.what();
  }
  kept.back().second = Tensor::zeros({24, 16});
  kept.emplace_back("backbone.layers.7.extra.weight", Tensor::zeros({2}));
  write_safetensors(dir + "/model.safetensors", kept);
  try {
    load_pretrained(dir);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'backbone.layers.7.extra.weight' is not a parameter"), std::string::npos)
        << e.what();
  }
}

TEST(runtime_safetensors, LoadsBf16AndTransformers5Names) {
  // The same weights stored the way transformers 5 holds them in memory: model.* names,
  // experts stacked into one [experts, out, in] tensor per projection, and bf16 values.
  NemotronH model(nemokit::rt::testing::tiny_config("ME"));
  model.init_weights(4);
  std::string dir = scratch("tf5");
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << model.config().to_json().dump();
  std::vector<NamedTensor> out;
  const int64_t E = model.config().n_routed_experts;
  for (const char* proj : {"up_proj", "down_proj"}) {
    Tensor first = model.find(std::string("backbone.layers.1.mixer.experts.0.") + proj + ".weight")->value;
    Tensor stacked = Tensor::empty({E, first.size(0), first.size(1)});
    for (int64_t e = 0; e < E; ++e) {
      const Tensor& w = model.find("backbone.layers.1.mixer.experts." + std::to_string(e) + "." + proj + ".weight")->value;
      std::copy(w.f32(), w.f32() + w.numel(), stacked.f32() + e * w.numel());
    }
    out.emplace_back(std::string("model.layers.1.mixer.experts.") + proj, stacked.to(DType::bf16));
  }
  for (Parameter* p : model.parameters()) {
    if (p->name.find(".experts.") != std::string::npos) continue;
    std::string name = p->name.rfind("backbone.", 0) == 0 ? "model." + p->name.substr(9) : p->name;
    out.emplace_back(name, p->value.to(DType::bf16));
  }
  write_safetensors(dir + "/model.safetensors", out);
  auto loaded = load_pretrained(dir);
  for (Parameter* p : model.parameters()) {
    Parameter* q = loaded->find(p->name);
    ASSERT_NE(q, nullptr) << p->name;
    for (int64_t i = 0; i < p->value.numel(); ++i)
      ASSERT_EQ(q->value.f32()[i], bf16_to_float(float_to_bf16(p->value.f32()[i]))) << p->name << " [" << i << "]";
  }
}
