// `nemokit model export|import|lora-merge|adapter-export`: exact fp32 round trips, bf16
// rounding, merged LoRA exports, PEFT adapter names and shapes, and the CLI's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/model_cli.hpp"
#include "nemokit/runtime/optim.hpp"
#include "nemokit/runtime/peft_adapter.hpp"
#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/safetensors.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "scratch_path.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kFixtures = std::string(NEMOKIT_SOURCE_DIR) + "/tests/runtime/fixtures";

std::string scratch(const std::string& name) { return scratch_path("runtime_model_convert_test", name); }

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Runs `nemokit model ARGS`; stdout is swallowed, stderr returned through `err`.
int run(const std::vector<std::string>& args, std::string* err = nullptr) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  int rc = model_command(args);
  ::testing::internal::GetCapturedStdout();
  std::string e = ::testing::internal::GetCapturedStderr();
  if (err) *err = e;
  return rc;
}

// Round to nearest, ties to even, written out independently of the runtime's converter.
uint16_t rne_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t upper = u >> 16, lower = u & 0xffffu;
  if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) ++upper;
  return uint16_t(upper);
}

// A training run's folder: RUN/tokenizer.json at the root and a checkpoint in RUN/step_2.
std::string make_run(const std::string& name, const LoraConfig* lora) {
  const std::string run_dir = scratch(name);
  fs::remove_all(run_dir);
  fs::create_directories(run_dir);
  {
    std::ofstream out(run_dir + "/corpus.txt");
    for (int i = 0; i < 40; ++i) out << "a small corpus for a small tokenizer " << i << "\n";
  }
  BpeTrainOptions bo;
  bo.vocab_size = 280;
  Tokenizer tok = train_bpe({run_dir + "/corpus.txt"}, bo);
  tok.save(run_dir + "/tokenizer.json");
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(31);
  if (lora) model.add_lora(*lora);
  AdamW opt(model.parameters(), AdamWConfig{});
  for (uint32_t s = 0; s < 2; ++s) train_step(model, opt, 1e-2f, {random_batch(2, 8, 32, 70 + s)}, TrainOptions{});
  TrainerState st;
  st.step = 2;
  save_training_checkpoint(run_dir + "/step_2", model, opt, st);
  return run_dir;
}

std::vector<NamedTensor> all_tensors(const std::string& dir) {
  auto f = SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<NamedTensor> out;
  for (const auto& e : f.entries()) out.emplace_back(e.name, f.load(e.name));
  return out;
}

}  // namespace

TEST(runtime_model_convert, Fp32ExportThenImportIsBitForBit) {
  const std::string run_dir = make_run("run_plain", nullptr);
  const std::string ckpt = run_dir + "/step_2", exp = scratch("export_fp32"), imp = scratch("import_fp32");
  ASSERT_EQ(run({"export", ckpt, "--out", exp, "--dtype", "fp32"}), 0);
  EXPECT_FALSE(fs::exists(exp + ".tmp"));
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(exp + "/" + f)) << f;
  for (const char* f : {"optimizer.safetensors", "trainer_state.json", "adapter_config.json"})
    EXPECT_FALSE(fs::exists(exp + "/" + f)) << f;
  EXPECT_EQ(read_json(exp + "/config.json")["torch_dtype"], "float32");
  json tc = read_json(exp + "/tokenizer_config.json");
  EXPECT_EQ(tc["tokenizer_class"], "PreTrainedTokenizerFast");

  ASSERT_EQ(run({"import", exp, "--out", imp}), 0);
  EXPECT_EQ(read_json(imp + "/config.json"), read_json(ckpt + "/config.json"));
  EXPECT_TRUE(fs::exists(imp + "/tokenizer.json"));
  auto before = all_tensors(ckpt), after = all_tensors(imp);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].first, after[i].first);
    ASSERT_EQ(after[i].second.dtype(), DType::f32) << after[i].first;
    ASSERT_EQ(before[i].second.shape(), after[i].second.shape()) << before[i].first;
    EXPECT_EQ(std::memcmp(before[i].second.raw(), after[i].second.raw(), before[i].second.nbytes()), 0)
        << before[i].first << " changed on the way out and back";
  }
}

TEST(runtime_model_convert, Bf16ExportRoundsToNearestEven) {
  const std::string src = scratch("bf16_source"), exp = scratch("export_bf16"), imp = scratch("import_bf16");
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(32);
  // Exact ties and near-ties in the first weights, where truncation and rounding differ.
  float* w = model.find("backbone.embeddings.weight")->value.f32();
  const uint32_t cases[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f808001u, 0x3f807fffu, 0x7f7fffffu};
  for (size_t i = 0; i < std::size(cases); ++i) std::memcpy(&w[i], &cases[i], 4);
  save_pretrained(model, src);
  ASSERT_EQ(run({"export", src, "--out", exp}), 0);  // bf16 is the default
  EXPECT_EQ(read_json(exp + "/config.json")["torch_dtype"], "bfloat16");
  auto f = SafetensorsFile::open(exp + "/model.safetensors");
  size_t checked = 0;
  for (Parameter* p : model.parameters()) {
    const SafetensorsEntry* e = f.find(p->name);
    ASSERT_NE(e, nullptr) << p->name;
    ASSERT_EQ(e->dtype, DType::bf16) << p->name;
    Tensor t = f.load(p->name);
    const uint16_t* bits = t.data<uint16_t>();
    for (int64_t i = 0; i < p->value.numel(); ++i)
      ASSERT_EQ(bits[i], rne_bf16(p->value.f32()[i])) << p->name << "[" << i << "]";
    ++checked;
  }
  EXPECT_EQ(checked, model.parameters().size());
  Tensor emb = f.load("backbone.embeddings.weight");
  const uint16_t expect[] = {0x3f80, 0x3f82, 0xbf80, 0x3f81, 0x3f80, 0x7f80};  // the last overflows to inf, as torch
  for (size_t i = 0; i < std::size(expect); ++i) EXPECT_EQ(emb.data<uint16_t>()[i], expect[i]) << "case " << i;

  // Imported back, every value is the bf16 one widened exactly.
  ASSERT_EQ(run({"import", exp, "--out", imp}), 0);
  auto g = SafetensorsFile::open(imp + "/model.safetensors");
  for (const auto& e : g.entries()) {
    ASSERT_EQ(e.dtype, DType::f32);
    Tensor wide = g.load(e.name), narrow = f.load(e.name);
    for (int64_t i = 0; i < wide.numel(); ++i)
      ASSERT_EQ(wide.f32()[i], bf16_to_float(narrow.data<uint16_t>()[i])) << e.name;
  }
}

TEST(runtime_model_convert, LoraCheckpointExportsMerged) {
  LoraConfig cfg;
  cfg.rank = 2, cfg.targets = {"in_proj", "out_proj", "q_proj", "up_proj", "down_proj"};
  const std::string run_dir = make_run("run_lora", &cfg);
  const std::string ckpt = run_dir + "/step_2", exp = scratch("export_lora"), merged = scratch("merged_lora");
  ASSERT_EQ(run({"export", ckpt, "--out", exp, "--dtype", "fp32"}), 0);
  ASSERT_EQ(run({"lora-merge", ckpt, "--out", merged}), 0);
  EXPECT_FALSE(fs::exists(merged + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(merged + "/tokenizer.json"));
  auto a = all_tensors(exp), b = all_tensors(merged);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first.find(".lora_"), std::string::npos) << a[i].first;
    EXPECT_EQ(std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()), 0) << a[i].first;
  }
  // The merged folder computes what the LoRA checkpoint computes.
  auto lora = load_pretrained(ckpt);
  auto plain = load_pretrained(merged);
  ASSERT_TRUE(lora->has_lora());
  ASSERT_FALSE(plain->has_lora());
  Batch batch = random_batch(1, 10, 32, 80);
  const Tensor& l1 = lora->forward(batch);
  std::vector<float> x(l1.f32(), l1.f32() + l1.numel());
  const Tensor& l2 = plain->forward(batch);
  double diff = 0;
  for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, double(std::fabs(x[i] - l2.f32()[i])));
  EXPECT_LT(diff, 1e-5);
}

TEST(runtime_model_convert, AdapterExportWritesPeftNamesAndShapes) {
  LoraConfig cfg;
  cfg.rank = 2, cfg.alpha = 4, cfg.dropout = 0.05f, cfg.targets = {"in_proj", "out_proj", "q_proj", "up_proj", "down_proj"};
  const std::string run_dir = make_run("run_adapter", &cfg);
  const std::string ckpt = run_dir + "/step_2", out = scratch("adapter");
  std::string err;
  ASSERT_EQ(run({"adapter-export", ckpt, "--out", out}, &err), 0) << err;
  EXPECT_NE(err.find("out_proj"), std::string::npos) << "the left-out Mamba out_proj adapters are not reported";
  json c = read_json(out + "/adapter_config.json");
  EXPECT_EQ(c["peft_type"], "LORA");
  EXPECT_EQ(c["task_type"], "CAUSAL_LM");
  EXPECT_EQ(c["r"], 2);
  EXPECT_EQ(c["lora_alpha"], 4);
  EXPECT_EQ(c["lora_dropout"], 0.0);  // PEFT's expert wrappers refuse dropout
  EXPECT_EQ(c["target_modules"], json({"model.layers.0.mixer.in_proj", "model.layers.1.mixer.shared_experts.up_proj",
                                       "model.layers.1.mixer.shared_experts.down_proj", "model.layers.2.mixer.q_proj",
                                       "model.layers.3.mixer.up_proj", "model.layers.3.mixer.down_proj"}));
  EXPECT_EQ(c["target_parameters"], json({"model.layers.1.mixer.experts.up_proj", "model.layers.1.mixer.experts.down_proj"}));

  auto f = SafetensorsFile::open(out + "/adapter_model.safetensors");
  auto shape = [&](const std::string& n) {
    const SafetensorsEntry* e = f.find("base_model.model." + n);
    return e ? e->shape : std::vector<int64_t>{-1};
  };
  using S = std::vector<int64_t>;
  EXPECT_EQ(shape("model.layers.0.mixer.in_proj.lora_A.weight"), (S{2, 16}));
  EXPECT_EQ(shape("model.layers.0.mixer.in_proj.lora_B.weight"), (S{tiny_config().mamba_in_proj_dim(), 2}));
  EXPECT_EQ(shape("model.layers.2.mixer.q_proj.lora_B.weight"), (S{16, 2}));
  EXPECT_EQ(shape("model.layers.3.mixer.down_proj.lora_A.weight"), (S{2, 24}));
  EXPECT_EQ(shape("model.layers.1.mixer.shared_experts.up_proj.lora_B.weight"), (S{12, 2}));
  // Stacked routed experts (4 experts, inner 8): up inside (base_layer), down outside.
  EXPECT_EQ(shape("model.layers.1.mixer.experts.base_layer.lora_A.weight"), (S{8, 16}));
  EXPECT_EQ(shape("model.layers.1.mixer.experts.base_layer.lora_B.weight"), (S{8, 8}));
  EXPECT_EQ(shape("model.layers.1.mixer.experts.lora_A.weight"), (S{8, 8}));
  EXPECT_EQ(shape("model.layers.1.mixer.experts.lora_B.weight"), (S{16, 8}));
  EXPECT_EQ(f.entries().size(), 2u * (6 + 2));
  for (const auto& e : f.entries()) EXPECT_EQ(e.name.find("out_proj"), std::string::npos) << e.name;

  // Expert e's A is rows [e*r, (e+1)*r); its B is columns e, e+E, ... (PEFT's layout).
  auto model = load_pretrained(ckpt);
  Tensor A = f.load_f32("base_model.model.model.layers.1.mixer.experts.base_layer.lora_A.weight");
  Tensor B = f.load_f32("base_model.model.model.layers.1.mixer.experts.base_layer.lora_B.weight");
  for (int64_t e = 0; e < 4; ++e) {
    const std::string m = "backbone.layers.1.mixer.experts." + std::to_string(e) + ".up_proj";
    const Tensor& a = model->find(m + ".lora_A.weight")->value;
    const Tensor& b = model->find(m + ".lora_B.weight")->value;
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(A.f32()[e * a.numel() + i], a.f32()[i]) << m;
    for (int64_t o = 0; o < 8; ++o)
      for (int64_t j = 0; j < 2; ++j) ASSERT_EQ(B.f32()[o * 8 + j * 4 + e], b.f32()[o * 2 + j]) << m;
  }
}

TEST(runtime_model_convert, CommandErrorsNameTheProblem) {
  std::string err;
  const std::string missing = scratch("no_such_checkpoint");
  EXPECT_EQ(run({"export", missing, "--out", scratch("x")}, &err), 1);
  EXPECT_NE(err.find(missing + ": no such folder"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line: " << err;

  const std::string run_dir = make_run("run_errors", nullptr);
  EXPECT_EQ(run({"export", run_dir + "/step_2", "--out", scratch("y"), "--dtype", "fp16"}, &err), 2);
  EXPECT_NE(err.find("'fp16' is not bf16 or fp32"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(scratch("y")));
  EXPECT_EQ(run({"export", run_dir + "/step_2"}, &err), 2);
  EXPECT_NE(err.find("--out"), std::string::npos) << err;
  EXPECT_EQ(run({"export", run_dir, "--out", scratch("z")}, &err), 1);  // the run root has no config.json
  EXPECT_NE(err.find(run_dir + "/config.json"), std::string::npos) << err;
  EXPECT_EQ(run({"lora-merge", run_dir + "/step_2", "--out", scratch("z")}, &err), 1);
  EXPECT_NE(err.find("adapter_config.json: missing (not a LoRA checkpoint)"), std::string::npos) << err;
  EXPECT_EQ(run({"adapter-export", run_dir + "/step_2", "--out", scratch("z")}, &err), 1);
  EXPECT_NE(err.find("not a LoRA checkpoint"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(scratch("z")));
}

// What check_peft_adapter.py reads: the transformers fixture model (base/), a PEFT adapter
// exported from LoRA on it (adapter/), and nemokit's logits of the adapted model.
TEST(runtime_model_convert, PeftAdapterForTheTransformersCheck) {
  const char* where = std::getenv("NEMOKIT_PEFT_DIR");
  const std::string dir = where ? where : scratch("peft_check");
  fs::create_directories(dir);
  auto model = load_pretrained(kFixtures + "/nemotronh_tiny");
  save_pretrained(*model, dir + "/base");
  LoraConfig cfg;
  cfg.rank = 2, cfg.alpha = 4, cfg.seed = 3;
  cfg.targets = {"in_proj", "q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"};
  model->add_lora(cfg);
  Rng rng(4);
  for (Parameter* p : model->parameters())
    if (p->name.find(".lora_B.") != std::string::npos)
      for (int64_t i = 0; i < p->value.numel(); ++i) p->value.f32()[i] = 0.1f * rng.normal();
  PeftExport report = save_peft_adapter(*model, dir + "/adapter");
  EXPECT_TRUE(report.left_out.empty());
  Batch batch = random_batch(2, 12, model->config().vocab_size, 90);
  Tensor ids = Tensor::empty({2, 12}, DType::i64);
  for (int64_t i = 0; i < 24; ++i) ids.data<int64_t>()[i] = batch.input_ids[i];
  const Tensor& logits = model->forward(batch);
  write_safetensors(dir + "/reference.safetensors", {{"input_ids", ids}, {"logits", logits.clone()}});
}

// A folder as transformers 5 saves it: model.* names, each layer's routed experts stacked
// into one [experts, out, in] tensor per projection, bf16.
TEST(runtime_model_convert, ImportsTransformers5NamesAndBf16) {
  const std::string hf = scratch("hf5_bf16"), imp = scratch("import_hf5");
  fs::remove_all(hf);
  fs::create_directories(hf);
  NemotronH model(tiny_config("ME*-"));
  model.init_weights(33);
  json config = model.config().to_json();
  config["torch_dtype"] = "bfloat16";
  std::ofstream(hf + "/config.json") << config.dump(2);
  std::vector<NamedTensor> tensors;
  const int64_t E = model.config().n_routed_experts;
  for (Parameter* p : model.parameters()) {
    std::string name = "model." + p->name.substr(p->name.find('.') + 1);
    if (p->name == "lm_head.weight") name = p->name;
    auto pos = name.find(".experts.");
    if (pos == std::string::npos) {
      tensors.emplace_back(name, p->value.to(DType::bf16));
      continue;
    }
    if (name.find(".experts.0.") == std::string::npos) continue;  // stacked once, from expert 0
    std::string proj = name.substr(pos + 11, name.size() - pos - 11 - 7);  // "<proj>" of ".experts.0.<proj>.weight"
    const auto& shape = p->value.shape();
    Tensor stacked = Tensor::empty({E, shape[0], shape[1]});
    for (int64_t e = 0; e < E; ++e) {
      const std::string ours = p->name.substr(0, p->name.find(".experts.") + 9) + std::to_string(e) + "." + proj + ".weight";
      const Tensor& w = model.find(ours)->value;
      std::copy(w.f32(), w.f32() + w.numel(), stacked.f32() + e * w.numel());
    }
    tensors.emplace_back(name.substr(0, pos) + ".experts." + proj, stacked.to(DType::bf16));
  }
  write_safetensors(hf + "/model.safetensors", tensors, {{"format", "pt"}});
  ASSERT_EQ(run({"import", hf, "--out", imp}), 0);

  EXPECT_EQ(read_json(imp + "/config.json")["torch_dtype"], "float32");
  auto f = SafetensorsFile::open(imp + "/model.safetensors");
  EXPECT_EQ(f.entries().size(), model.parameters().size());
  for (Parameter* p : model.parameters()) {
    ASSERT_NE(f.find(p->name), nullptr) << p->name << " missing from the imported folder";
    Tensor t = f.load(p->name);
    ASSERT_EQ(t.dtype(), DType::f32) << p->name;
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_EQ(t.f32()[i], bf16_to_float(rne_bf16(p->value.f32()[i]))) << p->name << "[" << i << "]";
  }
}
