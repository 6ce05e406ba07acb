// The SFT stage's parts on their own: packers, the packed format, answer-only masks on real
// tokens, and the two properties the loss relies on — non-assistant tokens never reach the loss,
// and packing documents together changes no document's loss or gradient.
#include "chat/chat_template.hpp"
#include "data/packed_split.hpp"
#include "prep/packing.hpp"
#include "prep/tokenize_chat.hpp"
#include "train/generation_eval.hpp"
#include "train/pack_batches.hpp"

#include "../runtime/tiny_model.hpp"

#include "nemokit/runtime/tokenizer.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <set>

namespace fs = std::filesystem;
using namespace nemokit;
using nlohmann::ordered_json;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nemokit-sft-units-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A small byte-level BPE with the template's markers as special tokens, trained on real text.
const rt::Tokenizer& chat_tokenizer() {
  static const rt::Tokenizer tok = [] {
    fs::path dir = scratch("tok");
    std::ofstream(dir / "text.txt") << "Define the word cat. cat (noun): a small domesticated carnivore.\n"
                                       "What is the capital of France? The capital of France is Paris.\n"
                                       "You are a concise dictionary. Use the word dog in a sentence.\n";
    rt::BpeTrainOptions o;
    o.vocab_size = 400;
    o.min_frequency = 1;
    o.special_tokens = {"<|endoftext|>"};
    for (const auto& t : sft::chat_special_tokens()) o.special_tokens.push_back(t);
    return rt::train_bpe({dir / "text.txt"}, o);
  }();
  return tok;
}

ordered_json chat(const std::string& system, const std::string& user, const std::string& answer) {
  ordered_json m = ordered_json::array();
  if (!system.empty()) m.push_back({{"role", "system"}, {"content", system}});
  m.push_back({{"role", "user"}, {"content", user}});
  m.push_back({{"role", "assistant"}, {"content", answer}});
  return {{"messages", m}};
}

sft::TokenizedChat tokenized(const ordered_json& record) {
  return sft::tokenize_chat(chat_tokenizer(), sft::render_chat(record, {false, false}, "test:1"));
}

}  // namespace

TEST(sft_packing, EveryPackerPlacesEachDocumentOnceWithinCapacity) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 500; ++i) lengths.push_back(1 + (i * 37) % 90);
  for (auto packer : {sft::Packer::FirstFitShuffle, sft::Packer::FirstFitDecreasing, sft::Packer::Concatenative}) {
    auto packs = sft::pack_documents(lengths, 100, packer, 7);
    std::multiset<int64_t> seen;
    for (const auto& p : packs) {
      int64_t used = 0;
      for (int64_t d : p) used += lengths[size_t(d)], seen.insert(d);
      EXPECT_LE(used, 100) << sft::packer_name(packer);
      EXPECT_FALSE(p.empty());
      EXPECT_TRUE(std::is_sorted(p.begin(), p.end())) << "documents keep input order inside a pack";
    }
    EXPECT_EQ(seen.size(), lengths.size());
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), lengths.size()) << sft::packer_name(packer);
  }
  const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t(0));
  auto ffd = sft::pack_documents(lengths, 100, sft::Packer::FirstFitDecreasing, 7);
  auto ffs = sft::pack_documents(lengths, 100, sft::Packer::FirstFitShuffle, 7);
  auto cat = sft::pack_documents(lengths, 100, sft::Packer::Concatenative, 7);
  EXPECT_GE(int64_t(ffd.size()) * 100, total);
  EXPECT_LE(ffd.size(), ffs.size());
  EXPECT_LE(ffs.size(), cat.size());
  // Concatenative keeps the input order across packs too.
  int64_t expect = 0;
  for (const auto& p : cat)
    for (int64_t d : p) EXPECT_EQ(d, expect++);
  // Seeded: the same seed packs the same way, another seed differently.
  EXPECT_EQ(ffs, sft::pack_documents(lengths, 100, sft::Packer::FirstFitShuffle, 7));
  EXPECT_NE(ffs, sft::pack_documents(lengths, 100, sft::Packer::FirstFitShuffle, 8));
}

TEST(sft_packing, UnknownPackerNamesTheKey) {
  try {
    sft::parse_packer("best_fit");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("data.packer"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("best_fit"), std::string::npos);
  }
}

TEST(sft_packed_split, WritesNumpyArraysAndReadsThemBack) {
  sft::PackedSplit s;
  s.pack_size = 8;
  s.input_ids = {1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 13, 14};
  s.loss_mask = {0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0};
  s.seq_start_id = {0, 3, 0};
  s.seq_start_ptr = {0, 2, 3};
  s.pack_length = {6, 8};
  fs::path dir = scratch("split");
  s.write(dir);
  sft::PackedSplit r = sft::PackedSplit::read(dir);
  EXPECT_EQ(r.pack_size, 8);
  EXPECT_EQ(r.input_ids, s.input_ids);
  EXPECT_EQ(r.loss_mask, s.loss_mask);
  EXPECT_EQ(r.document_bounds(0), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(r.document_bounds(1), (std::vector<int64_t>{0, 8}));
  // A corrupt layout is refused with the file named.
  s.seq_start_id = {0, 7, 0};
  s.write(dir);
  try {
    sft::PackedSplit::read(dir);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("seq_start_id.npy"), std::string::npos) << e.what();
  }
}

TEST(sft_mask, TrainedTokensAreExactlyTheAssistantsText) {
  const rt::Tokenizer& tok = chat_tokenizer();
  auto record = chat("You are a concise dictionary.", "Define the word cat.", "cat (noun): a small domesticated carnivore");
  sft::TokenizedChat t = tokenized(record);
  std::vector<int32_t> trained;
  for (size_t i = 0; i < t.ids.size(); ++i)
    if (t.trained[i]) trained.push_back(t.ids[i]);
  // The assistant produces its (empty) reasoning block, the answer and the end of its turn.
  EXPECT_EQ(tok.decode(trained), "<think></think>cat (noun): a small domesticated carnivore<|im_end|>");
  // Every id together decodes to the template's text.
  EXPECT_EQ(tok.decode(t.ids), sft::joined_text(sft::render_chat(record, {false, false}, "x")));
}

TEST(sft_mask, PackedRowsShiftTheMaskOntoThePositionBeforeEachTarget) {
  const rt::Tokenizer& tok = chat_tokenizer();
  std::vector<sft::TokenizedChat> docs = {tokenized(chat("", "Define the word cat.", "cat (noun): a pet")),
                                          tokenized(chat("", "What is the capital of France?", "The capital of France is Paris."))};
  sft::PackedSplit s;
  s.pack_size = 128;
  s.input_ids.assign(128, 0);
  s.loss_mask.assign(128, 0);
  s.seq_start_ptr = {0, 2};
  int64_t pos = 0;
  for (const auto& d : docs) {
    s.seq_start_id.push_back(int32_t(pos));
    for (size_t i = 0; i < d.ids.size(); ++i) {
      s.input_ids[size_t(pos) + i] = d.ids[i];
      if (i + 1 < d.ids.size()) s.loss_mask[size_t(pos) + i] = d.trained[i + 1];
    }
    pos += int64_t(d.ids.size());
  }
  s.pack_length = {int32_t(pos)};
  ASSERT_LE(pos, 128);
  int32_t next_doc = 0;
  rt::Batch b = sft::make_pack_batch(s, {0}, next_doc);
  std::vector<int32_t> targets;
  for (int32_t t : b.targets)
    if (t >= 0) targets.push_back(t);
  EXPECT_EQ(tok.decode(targets),
            "<think></think>cat (noun): a pet<|im_end|><think></think>The capital of France is Paris.<|im_end|>");
  EXPECT_EQ(b.doc_ids[0], b.doc_ids[docs[0].ids.size() - 1]);
  EXPECT_NE(b.doc_ids[docs[0].ids.size() - 1], b.doc_ids[docs[0].ids.size()]);
  EXPECT_EQ(b.pad[size_t(pos) - 1], 0);
  EXPECT_EQ(b.pad[size_t(pos)], 1);
}

// Build one batch row per conversation (each alone), with targets from the shifted mask.
rt::Batch rows_of(const std::vector<sft::TokenizedChat>& docs, int64_t seq, int32_t pad) {
  for (const auto& d : docs) EXPECT_LE(int64_t(d.ids.size()), seq);
  for (const auto& d : docs) seq = std::max<int64_t>(seq, int64_t(d.ids.size()));
  rt::Batch b;
  b.batch = int64_t(docs.size());
  b.seq = seq;
  b.input_ids.assign(size_t(b.batch * seq), pad);
  b.targets.assign(size_t(b.batch * seq), -1);
  for (size_t r = 0; r < docs.size(); ++r)
    for (size_t i = 0; i < docs[r].ids.size(); ++i) {
      b.input_ids[r * size_t(seq) + i] = docs[r].ids[i];
      if (i + 1 < docs[r].ids.size() && docs[r].trained[i + 1]) b.targets[r * size_t(seq) + i] = docs[r].ids[i + 1];
    }
  return b;
}

std::vector<float> all_grads(rt::NemotronH& m) {
  std::vector<float> g;
  for (rt::Parameter* p : m.parameters())
    if (!p->buffer && p->grad.defined()) g.insert(g.end(), p->grad.f32(), p->grad.f32() + p->grad.numel());
  return g;
}

TEST(sft_loss, UserAndSystemTokensChangeNeitherLossNorGradient) {
  // The same exchange followed by different trailing user and system turns (other words, other
  // lengths): the assistant's tokens never see them, so with an answer-only mask the loss and
  // every gradient are identical. Were the mask to let a user or system token into the loss,
  // both would change.
  const rt::Tokenizer& tok = chat_tokenizer();
  auto conversation = [](const std::string& user2, const std::string& system2) {
    ordered_json r = chat("You are a concise dictionary.", "Define the word cat.", "cat (noun): a pet");
    r["messages"].push_back({{"role", "user"}, {"content", user2}});
    r["messages"].push_back({{"role", "system"}, {"content", system2}});
    return r;
  };
  auto a = tokenized(conversation("Use the word dog in a sentence.", "You are a concise dictionary."));
  auto b = tokenized(conversation("What is the capital of France? Paris?", "Answer."));
  ASSERT_NE(a.ids, b.ids);
  auto cfg = rt::testing::tiny_config("ME*-E");
  cfg.vocab_size = tok.vocab_size();
  rt::NemotronH model(cfg);
  model.init_weights(5);
  auto run = [&](const sft::TokenizedChat& doc) {
    rt::Batch batch = rows_of({doc}, 256, 0);
    model.zero_grad();
    rt::StepResult r = model.forward_backward(batch, rt::LossOptions{}, true);
    return std::make_pair(r.loss, all_grads(model));
  };
  auto [loss_a, grad_a] = run(a);
  auto [loss_b, grad_b] = run(b);
  EXPECT_EQ(loss_a, loss_b);
  ASSERT_EQ(grad_a.size(), grad_b.size());
  size_t differing = 0;
  for (size_t i = 0; i < grad_a.size(); ++i) differing += grad_a[i] != grad_b[i];
  EXPECT_EQ(differing, 0u);
  EXPECT_GT(loss_a, 0.0f);
}

TEST(sft_loss, PackedAndUnpackedDocumentsGiveTheSameLossesAndGradients) {
  const rt::Tokenizer& tok = chat_tokenizer();
  std::vector<sft::TokenizedChat> docs = {
      tokenized(chat("You are a concise dictionary.", "Define the word cat.", "cat (noun): a small domesticated carnivore")),
      tokenized(chat("", "What is the capital of France?", "The capital of France is Paris.")),
      tokenized(chat("", "Use the word dog in a sentence.", "The dog ran."))};
  auto cfg = rt::testing::tiny_config("M*E-M");
  cfg.vocab_size = tok.vocab_size();
  rt::NemotronH model(cfg);
  model.init_weights(9);
  rt::LossOptions sum;
  sum.mean = false;

  // Alone: one document per row, summed over the rows.
  int64_t longest = 0;
  for (const auto& d : docs) longest = std::max<int64_t>(longest, int64_t(d.ids.size()));
  model.zero_grad();
  std::vector<float> alone_losses;
  for (const auto& d : docs) {
    rt::Batch b = rows_of({d}, int64_t(d.ids.size()), 0);
    model.forward_backward(b, sum, true);
    for (size_t i = 0; i < d.ids.size(); ++i)
      if (b.targets[i] >= 0) alone_losses.push_back(model.token_losses()[i]);
  }
  std::vector<float> alone_grads = all_grads(model);

  // Packed: the three in one row, with padding after them.
  sft::PackedSplit s;
  s.pack_size = 160;
  s.input_ids.assign(160, 0);
  s.loss_mask.assign(160, 0);
  s.seq_start_ptr = {0, 3};
  int64_t pos = 0;
  for (const auto& d : docs) {
    s.seq_start_id.push_back(int32_t(pos));
    for (size_t i = 0; i < d.ids.size(); ++i) {
      s.input_ids[size_t(pos) + i] = d.ids[i];
      if (i + 1 < d.ids.size()) s.loss_mask[size_t(pos) + i] = d.trained[i + 1];
    }
    pos += int64_t(d.ids.size());
  }
  ASSERT_LT(pos, 160);
  s.pack_length = {int32_t(pos)};
  int32_t next_doc = 0;
  rt::Batch packed = sft::make_pack_batch(s, {0}, next_doc);
  model.zero_grad();
  model.forward_backward(packed, sum, true);
  std::vector<float> packed_losses;
  for (size_t i = 0; i < packed.targets.size(); ++i)
    if (packed.targets[i] >= 0) packed_losses.push_back(model.token_losses()[i]);
  std::vector<float> packed_grads = all_grads(model);

  ASSERT_EQ(alone_losses.size(), packed_losses.size());
  for (size_t i = 0; i < alone_losses.size(); ++i) EXPECT_NEAR(alone_losses[i], packed_losses[i], 1e-5f) << "token " << i;
  ASSERT_EQ(alone_grads.size(), packed_grads.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < alone_grads.size(); ++i) {
    worst = std::max(worst, double(std::fabs(alone_grads[i] - packed_grads[i])));
    scale = std::max(scale, double(std::fabs(alone_grads[i])));
  }
  EXPECT_LT(worst, 1e-4 * std::max(1.0, scale)) << "largest gradient " << scale;
}

TEST(sft_loss, SampleNormalizationWeighsEveryDocumentEqually) {
  // Two documents, 2 and 6 trained tokens, in two micro-batches: token-level gives every token
  // 1/8 of the objective, sample-level every document 1/2, split over its own tokens.
  auto batch = [](int64_t trained, int32_t doc) {
    rt::Batch b;
    b.batch = 1, b.seq = 8;
    b.input_ids.assign(8, 1);
    b.targets.assign(8, -1);
    b.doc_ids.assign(8, doc);
    for (int64_t i = 0; i < trained; ++i) b.targets[size_t(i)] = 2;
    return b;
  };
  std::vector<rt::Batch> micro = {batch(2, 0), batch(6, 1)};
  EXPECT_EQ(sft::set_loss_weights(micro, sft::LossNormalization::Token), 8);
  EXPECT_FLOAT_EQ(micro[0].loss_weights[0], 2.0f / 8);  // x2: train_step divides by the micro-batches
  EXPECT_FLOAT_EQ(micro[1].loss_weights[0], 2.0f / 8);
  EXPECT_FLOAT_EQ(micro[0].loss_weights[7], 0.0f);
  sft::set_loss_weights(micro, sft::LossNormalization::Sample);
  EXPECT_FLOAT_EQ(micro[0].loss_weights[0], 2.0f / (2 * 2));
  EXPECT_FLOAT_EQ(micro[1].loss_weights[0], 2.0f / (6 * 2));
  double total = 0;
  for (const auto& b : micro)
    for (float w : b.loss_weights) total += w;
  EXPECT_NEAR(total / 2, 1.0, 1e-6);
}

TEST(sft_sampler, ResumesWithTheSamePacks) {
  sft::PackSampler a(10, 3);
  a.next(7);
  auto pos = a.position();
  auto expect = a.next(9);
  sft::PackSampler b(10, 3);
  b.restore(pos);
  EXPECT_EQ(b.next(9), expect);
  EXPECT_EQ(a.epoch(), 1);
}

TEST(sft_eval, AnswerTextDropsReasoningAndTheEndOfTurn) {
  EXPECT_EQ(sft::answer_text("The capital of Peru is Lima.<|im_end|>"), "The capital of Peru is Lima.");
  EXPECT_EQ(sft::answer_text("<think>Peru... Lima.</think>The capital of Peru is Lima."), "The capital of Peru is Lima.");
  EXPECT_EQ(sft::answer_text("  cat (noun): a pet\n"), "cat (noun): a pet");
  EXPECT_EQ(sft::answer_text("<think>never closed"), "");
}
