// Against transformers: fixtures/nemotronh_tiny is a random NemotronH saved by transformers
// and fixtures/nemotronh_tiny_reference.safetensors holds its inputs, logits, loss and
// gradients (both written by make_nemotronh_fixture.py). The runtime must reproduce them.
#include <gtest/gtest.h>

#include <cstdlib>

#include <cmath>
#include <filesystem>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/safetensors.hpp"

using namespace nemokit::rt;

namespace {

const std::string kFixtures = std::string(NEMOKIT_SOURCE_DIR) + "/tests/runtime/fixtures";

double max_rel_error(const float* a, const float* ref, int64_t n) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - ref[i]));
    scale = std::max(scale, std::fabs(double(ref[i])));
  }
  return diff / std::max(scale, 1e-30);
}

Batch reference_batch(const SafetensorsFile& ref) {
  Tensor ids = ref.load("input_ids"), targets = ref.load("targets");
  Batch b;
  b.batch = ids.size(0), b.seq = ids.size(1);
  for (int64_t i = 0; i < ids.numel(); ++i) b.input_ids.push_back(int32_t(ids.data<int64_t>()[i]));
  for (int64_t i = 0; i < targets.numel(); ++i) b.targets.push_back(int32_t(targets.data<int64_t>()[i]));
  return b;
}

}  // namespace

TEST(runtime_hf_fixture, LogitsLossAndGradientsMatchTransformers) {
  auto model = load_pretrained(kFixtures + "/nemotronh_tiny");
  EXPECT_EQ(model->config().pattern, "M*E-M");
  auto ref = SafetensorsFile::open(kFixtures + "/nemotronh_tiny_reference.safetensors");
  Batch batch = reference_batch(ref);
  model->zero_grad();
  StepResult r = model->forward_backward(batch, LossOptions{}, true);

  Tensor logits = ref.load("logits");
  ASSERT_EQ(logits.numel(), model->logits().numel());
  EXPECT_LT(max_rel_error(model->logits().f32(), logits.f32(), logits.numel()), 1e-4);
  float ref_loss = ref.load("loss").f32()[0];
  EXPECT_NEAR(r.loss, ref_loss, 1e-4 * ref_loss);

  int compared = 0;
  for (const auto& e : ref.entries()) {
    if (e.name.rfind("grad.", 0) != 0) continue;
    std::string name = e.name.substr(5);
    Parameter* p = model->find(name);
    ASSERT_NE(p, nullptr) << name;
    Tensor g = ref.load(e.name);
    ASSERT_EQ(g.shape(), p->grad.shape()) << name;
    EXPECT_LT(max_rel_error(p->grad.f32(), g.f32(), g.numel()), 1e-4) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 41);  // every trainable tensor of the fixture model (all but the router bias)
}

TEST(runtime_hf_fixture, SavedCheckpointRoundTripsAndIsReadableByTransformersScript) {
  auto model = load_pretrained(kFixtures + "/nemotronh_tiny");
  auto ref = SafetensorsFile::open(kFixtures + "/nemotronh_tiny_reference.safetensors");
  Batch batch = reference_batch(ref);
  batch.targets.clear();
  std::vector<float> logits(model->forward(batch).f32(), model->forward(batch).f32() + model->logits().numel());

  // Sharded at a small size so the index path is exercised as well.
  // (NEMOKIT_ROUNDTRIP_DIR: the folder the transformers check reads, so it runs beside this test.)
  const char* where = std::getenv("NEMOKIT_ROUNDTRIP_DIR");
  std::string dir = where ? where : std::string(NEMOKIT_BINARY_DIR) + "/runtime_roundtrip_ckpt";
  save_pretrained(*model, dir, 16 * 1024);
  EXPECT_TRUE(std::filesystem::exists(dir + "/model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
  auto again = load_pretrained(dir);
  const Tensor& l2 = again->forward(batch);
  for (int64_t i = 0; i < l2.numel(); ++i) ASSERT_EQ(l2.f32()[i], logits[i]) << "logit " << i;

  // Beside it, what `make_nemotronh_fixture.py --check DIR` compares transformers against.
  write_safetensors(dir + "/reference.safetensors",
                    {{"input_ids", ref.load("input_ids")}, {"logits", again->logits().clone()}});
}
