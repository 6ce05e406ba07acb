// GPT-style sampling: windows tile each epoch's tokens exactly, epochs are permutations of the
// documents, blends follow their weights, and a saved position resumes the identical stream.

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "nemokit/runtime/data/gpt_dataset.hpp"

namespace fs = std::filesystem;
using namespace nemokit::rt;

namespace {

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(NEMOKIT_BINARY_DIR) / "tests" / "data" / "tmp" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Every token is unique: document d's token t is base + d * 1000 + t, so a token tells where it
// came from. Lengths vary (some documents are empty) so windows cross document boundaries.
std::vector<std::vector<int32_t>> make_docs(size_t n, int32_t base, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> docs(n);
  for (size_t d = 0; d < n; ++d) {
    docs[d].resize(rng() % 97);
    for (size_t t = 0; t < docs[d].size(); ++t) docs[d][t] = base + static_cast<int32_t>(d * 1000 + t);
  }
  return docs;
}

std::shared_ptr<const IndexedDataset> write_dataset(const fs::path& prefix,
                                                    const std::vector<std::vector<int32_t>>& docs) {
  IndexedDatasetWriter w(prefix, TokenDType::Int32);
  for (const auto& d : docs) w.add_document(d);
  w.finish();
  return IndexedDataset::open(prefix);
}

}  // namespace

TEST(DataSampling, PermuteIndexIsABijection) {
  for (uint64_t n : {1ull, 2ull, 3ull, 17ull, 64ull, 1000ull, 4097ull}) {
    std::vector<bool> seen(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t j = permute_index(i, n, 42);
      ASSERT_LT(j, n);
      ASSERT_FALSE(seen[j]) << "n=" << n << " repeats " << j;
      seen[j] = true;
    }
  }
  // And it actually shuffles.
  size_t fixed = 0;
  for (uint64_t i = 0; i < 1000; ++i) fixed += permute_index(i, 1000, 7) == i;
  EXPECT_LT(fixed, 20u);
}

TEST(DataSampling, WindowsTileEveryEpochExactly) {
  const auto dir = fresh_dir("tile");
  const auto docs = make_docs(60, 0, 3);
  auto data = write_dataset(dir / "d", docs);
  const int64_t seq_len = 37;
  GptDataset ds(data, seq_len, /*seed=*/1234);
  const uint64_t tokens = data->total_tokens();
  const uint64_t epochs = 3;
  // Whole shuffle blocks, enough of them to hold three full epochs of tokens.
  const uint64_t samples = ds.samples_per_epoch() * (epochs + 1);
  ASSERT_GE(samples * static_cast<uint64_t>(seq_len), epochs * tokens);

  // Samples, put back in window order, must be the consecutive windows 0..samples-1.
  std::map<uint64_t, std::vector<int32_t>> by_window;
  for (uint64_t i = 0; i < samples; ++i) {
    const uint64_t w = ds.window_of_sample(i);
    ASSERT_TRUE(by_window.emplace(w, ds.sample(i)).second) << "window " << w << " drawn twice";
  }
  ASSERT_EQ(by_window.begin()->first, 0u);
  ASSERT_EQ(by_window.rbegin()->first, samples - 1);

  // Stitch: consecutive windows share exactly one token (the last label is the next first input).
  std::vector<int32_t> stream;
  for (const auto& [w, toks] : by_window) {
    if (!stream.empty()) {
      ASSERT_EQ(stream.back(), toks.front()) << "window " << w;
    }
    stream.insert(stream.end(), toks.begin() + (stream.empty() ? 0 : 1), toks.end());
  }
  ASSERT_EQ(stream.size(), samples * static_cast<uint64_t>(seq_len) + 1);

  // Each full epoch in the stream is the documents, each exactly once, in that epoch's order.
  for (uint64_t e = 0; e < epochs; ++e) {
    std::vector<int32_t> expected;
    for (uint32_t d : ds.epoch_order(e)) expected.insert(expected.end(), docs[d].begin(), docs[d].end());
    const std::vector<int32_t> got(stream.begin() + static_cast<int64_t>(e * tokens),
                                   stream.begin() + static_cast<int64_t>((e + 1) * tokens));
    ASSERT_EQ(got, expected) << "epoch " << e;
    std::vector<uint32_t> order = ds.epoch_order(e);
    std::sort(order.begin(), order.end());
    for (uint32_t d = 0; d < order.size(); ++d) ASSERT_EQ(order[d], d);
  }
  // Epochs are shuffled differently.
  EXPECT_NE(ds.epoch_order(0), ds.epoch_order(1));
  // Samples are shuffled, not drawn in window order.
  size_t in_place = 0;
  for (uint64_t i = 0; i < samples; ++i) in_place += ds.window_of_sample(i) == i;
  EXPECT_LT(in_place, samples / 4);
}

TEST(DataSampling, SameSeedSameSamplesOtherSeedOtherSamples) {
  const auto dir = fresh_dir("seed");
  auto data = write_dataset(dir / "d", make_docs(40, 0, 5));
  GptDataset a(data, 16, 9), b(data, 16, 9), c(data, 16, 10);
  bool differs = false;
  for (uint64_t i = 0; i < 200; ++i) {
    ASSERT_EQ(a.sample(i), b.sample(i));
    differs |= a.sample(i) != c.sample(i);
  }
  EXPECT_TRUE(differs);
}

TEST(DataSampling, UnshuffledDatasetReadsTheDataInOrder) {
  const auto dir = fresh_dir("plain");
  const auto docs = make_docs(10, 0, 8);
  auto data = write_dataset(dir / "d", docs);
  GptDataset ds(data, 5, 0, /*shuffle=*/false);
  std::vector<int32_t> flat;
  for (const auto& d : docs) flat.insert(flat.end(), d.begin(), d.end());
  flat.insert(flat.end(), flat.begin(), flat.end());  // epoch 1, same order when unshuffled
  for (uint64_t i = 0; i < data->total_tokens() / 5; ++i) {
    const auto s = ds.sample(i);
    ASSERT_TRUE(std::equal(s.begin(), s.end(), flat.begin() + static_cast<int64_t>(i * 5))) << i;
  }
}

TEST(DataSampling, BlendFollowsTheWeights) {
  const auto dir = fresh_dir("blend");
  std::vector<BlendComponent> parts;
  const std::vector<double> weights = {5, 3, 2};
  for (int k = 0; k < 3; ++k) {
    auto data = write_dataset(dir / ("d" + std::to_string(k)), make_docs(30, k * 1000000, 11 + k));
    parts.push_back({std::make_shared<GptDataset>(data, 8, 100 + k), weights[k]});
  }
  BlendedSampler sampler(parts);
  std::vector<size_t> counts(3, 0);
  std::vector<int32_t> window(9);
  for (size_t n = 1; n <= 2000; ++n) {
    const size_t k = sampler.next(window);
    ++counts[k];
    // The tokens really come from dataset k (its ids start at k * 1e6).
    ASSERT_EQ(window[0] / 1000000, static_cast<int32_t>(k));
    for (size_t d = 0; d < 3; ++d)
      ASSERT_NEAR(static_cast<double>(counts[d]), weights[d] / 10.0 * static_cast<double>(n), 1.0)
          << "after " << n << " samples, dataset " << d;
  }
  EXPECT_EQ(sampler.position().sample, 2000u);
  EXPECT_EQ(sampler.position().per_dataset, (std::vector<uint64_t>{1000, 600, 400}));
  // Dataset k's n-th blended sample is its own sample n.
  BlendedSampler again(parts);
  std::vector<uint64_t> taken(3, 0);
  for (int n = 0; n < 50; ++n) {
    const size_t k = again.next(window);
    ASSERT_EQ(window, parts[k].dataset->sample(taken[k]++));
  }
}

TEST(DataSampling, ResumeFromSavedPositionContinuesIdentically) {
  const auto dir = fresh_dir("resume");
  std::vector<BlendEntry> entries;
  for (int k = 0; k < 2; ++k) {
    const auto prefix = dir / ("d" + std::to_string(k));
    write_dataset(prefix, make_docs(25, k * 1000000, 21 + k));
    entries.push_back({k == 0 ? 0.7 : 0.3, prefix});
  }
  auto first = open_blended_sampler(entries, 12, 77);
  first.next_batch(123);
  const std::string saved = first.position().to_json().dump();
  const auto continued = first.next_batch(300);

  auto second = open_blended_sampler(entries, 12, 77);
  second.restore(SamplerPosition::from_json(nlohmann::json::parse(saved), "position.json"));
  EXPECT_EQ(second.next_batch(300), continued);

  // A straight run to the same point gives the same samples too.
  auto straight = open_blended_sampler(entries, 12, 77);
  straight.next_batch(123);
  EXPECT_EQ(straight.next_batch(300), continued);

  // A position from other settings is refused.
  auto other = open_blended_sampler(entries, 12, 78);
  EXPECT_THROW(other.restore(SamplerPosition::from_json(nlohmann::json::parse(saved), "p")), std::invalid_argument);
  auto bad = SamplerPosition::from_json(nlohmann::json::parse(saved), "p");
  bad.per_dataset[0] += 1;
  EXPECT_THROW(second.restore(bad), std::invalid_argument);
  try {
    SamplerPosition::from_json(nlohmann::json{{"sample", 3}}, "ckpt/position.json");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt/position.json: sampler position lacks key \"per_dataset\""),
              std::string::npos)
        << e.what();
  }
}

TEST(DataSampling, ReadsBlendJsonWithRelativePrefixesAndNamesBadKeys) {
  const auto dir = fresh_dir("blendjson");
  {
    std::ofstream(dir / "blend.json") << R"({"train": [0.75, "a/shard_000000", "0.25", "/abs/b"], "valid": [1, 2]})";
  }
  const auto train = read_blend_split(dir / "blend.json", "train");
  ASSERT_EQ(train.size(), 2u);
  EXPECT_DOUBLE_EQ(train[0].weight, 0.75);
  EXPECT_EQ(train[0].prefix, dir / "a/shard_000000");
  EXPECT_DOUBLE_EQ(train[1].weight, 0.25);
  EXPECT_EQ(train[1].prefix, fs::path("/abs/b"));
  try {
    read_blend_split(dir / "blend.json", "valid");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("blend.json: key \"valid\"[1] must be a dataset prefix string"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(read_blend_split(dir / "blend.json", "test"), std::runtime_error);
}

TEST(DataSampling, WindowsLongerThanTheDataSpanSeveralEpochs) {
  const auto dir = fresh_dir("short");
  const std::vector<std::vector<int32_t>> docs = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9, 10}};
  auto data = write_dataset(dir / "d", docs);
  GptDataset ds(data, 25, 3);
  EXPECT_EQ(ds.samples_per_epoch(), 1u);
  std::vector<int32_t> stream;
  for (uint64_t e = 0; e < 12; ++e)
    for (uint32_t d : ds.epoch_order(e)) stream.insert(stream.end(), docs[d].begin(), docs[d].end());
  for (uint64_t i = 0; i < 4; ++i) {
    const auto s = ds.sample(i);
    ASSERT_TRUE(std::equal(s.begin(), s.end(), stream.begin() + static_cast<int64_t>(i * 25))) << i;
  }
}

TEST(DataSampling, ConcurrentReadersSeeTheSameSamples) {
  const auto dir = fresh_dir("threads");
  auto data = write_dataset(dir / "d", make_docs(50, 0, 31));
  const auto ds = std::make_shared<GptDataset>(data, 9, 5);
  // Far-apart samples so the threads keep evicting each other's cached epochs.
  std::vector<std::vector<int32_t>> serial;
  for (uint64_t i = 0; i < 400; ++i) serial.push_back(ds->sample(i * 37));
  std::vector<std::vector<std::vector<int32_t>>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 400; ++i) got[t].push_back(ds->sample(((i + 100 * t) % 400) * 37));
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t)
    for (uint64_t i = 0; i < 400; ++i) ASSERT_EQ(got[t][i], serial[(i + 100 * t) % 400]);
}

TEST(DataSampling, SampleOrderIsPinnedAcrossBuilds) {
  // Checkpoints store only a position, so the order must never drift between compilers, standard
  // libraries or versions. These values are the order this code defines; changing them breaks
  // resuming older checkpoints and must be a deliberate, announced change.
  const auto dir = fresh_dir("pinned");
  std::vector<std::vector<int32_t>> docs;
  for (int d = 0; d < 20; ++d) docs.emplace_back(static_cast<size_t>(d % 7 + 1), d);
  GptDataset ds(write_dataset(dir / "d", docs), 4, 42);
  EXPECT_EQ(ds.epoch_order(0),
            (std::vector<uint32_t>{11, 12, 10, 7, 14, 15, 8, 16, 4, 1, 3, 13, 2, 19, 0, 6, 17, 18, 9, 5}));
  std::vector<uint64_t> windows;
  for (uint64_t i = 0; i < 12; ++i) windows.push_back(ds.window_of_sample(i));
  EXPECT_EQ(windows, (std::vector<uint64_t>{3, 8, 18, 10, 13, 15, 14, 11, 2, 1, 6, 16}));
  EXPECT_EQ(permute_index(5, 1000, 7), 758u);
  EXPECT_EQ(mix_seed(1, 2), 17976013367585798959ull);
}
