#include "prep/data_prep.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <future>
#include <iomanip>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/data/indexed_dataset.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/utc_time.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "prep/document_source.hpp"
#include "prep/prep_config.hpp"
#include "prep/split_shards.hpp"

namespace nemokit::pretrain {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBatchChars = 4 << 20;   // text per tokenization batch
constexpr size_t kBatchDocs = 1 << 16;
const char* const kSplitNames[3] = {"train", "valid", "test"};

struct SourceStats {
  InputFile file;
  std::string sha256;
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t skipped = 0;
};

struct Batch {
  std::vector<std::string> texts;
  std::vector<uint32_t> source;  // index into the sources of each text
  size_t chars = 0;
};

// Deals documents to train/valid/test in exact proportion: document n goes to the split whose
// count lags its share of n the most. Deterministic and spread over every source.
class SplitAssigner {
 public:
  explicit SplitAssigner(const std::vector<double>& parts) {
    double total = 0;
    for (double p : parts) total += p;
    for (double p : parts) share_.push_back(p / total);
    counts_.assign(parts.size(), 0);
  }
  size_t next() {
    const double n = static_cast<double>(assigned_ + 1);
    size_t best = 0;
    double best_lag = share_[0] * n - static_cast<double>(counts_[0]);
    for (size_t s = 1; s < share_.size(); ++s) {
      const double lag = share_[s] * n - static_cast<double>(counts_[s]);
      if (lag > best_lag) best = s, best_lag = lag;
    }
    ++counts_[best];
    ++assigned_;
    return best;
  }

 private:
  std::vector<double> share_;
  std::vector<uint64_t> counts_;
  uint64_t assigned_ = 0;
};

int resolve_threads(int configured) {
  if (configured > 0) return configured;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Encodes every text of the batch on `threads` threads; result i belongs to texts[i].
std::vector<std::vector<int32_t>> encode_batch(const rt::Tokenizer& tok, const std::vector<std::string>& texts,
                                               int threads) {
  std::vector<std::vector<int32_t>> out(texts.size());
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    try {
      for (;;) {
        const size_t begin = next.fetch_add(32);
        if (begin >= texts.size()) return;
        const size_t end = std::min(texts.size(), begin + 32);
        for (size_t i = begin; i < end; ++i) out[i] = tok.encode(texts[i]);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
  return out;
}

// Reads documents across files into batches, keeping its place between calls.
class BatchReader {
 public:
  BatchReader(std::vector<SourceStats>& sources, const PrepConfig& config) : sources_(sources), config_(config) {}

  Batch next() {
    Batch b;
    std::string doc;
    while (b.chars < kBatchChars && b.texts.size() < kBatchDocs) {
      if (!reader_) {
        if (file_ >= sources_.size()) break;
        reader_ = std::make_unique<DocumentReader>(sources_[file_].file, config_);
      }
      if (!reader_->next(doc)) {
        sources_[file_].skipped = reader_->skipped();
        reader_.reset();
        ++file_;
        continue;
      }
      b.chars += doc.size();
      b.texts.push_back(std::move(doc));
      b.source.push_back(static_cast<uint32_t>(file_));
    }
    return b;
  }

 private:
  std::vector<SourceStats>& sources_;
  const PrepConfig& config_;
  size_t file_ = 0;
  std::unique_ptr<DocumentReader> reader_;
};

rt::Tokenizer obtain_tokenizer(const PrepConfig& config, const std::vector<SourceStats>& sources,
                               const fs::path& out_dir, std::ostream& log, nlohmann::json& meta) {
  if (config.tokenizer) {
    const fs::path path = fs::absolute(*config.tokenizer);
    if (!fs::exists(path)) throw std::invalid_argument("data.tokenizer: " + path.string() + " does not exist");
    auto tok = rt::Tokenizer::load(path);
    meta = {{"path", path.string()}, {"sha256", rt::sha256_file(path)}, {"trained", false}};
    log << "data prep: tokenizer " << path.string() << " (" << tok.vocab_size() << " ids)\n";
    return tok;
  }
  const auto& t = *config.train_tokenizer;
  // train_bpe reads text files; documents of JSONL inputs are gathered into one first.
  std::vector<fs::path> files;
  fs::path jsonl_text;
  for (const auto& s : sources) {
    if (s.file.format == InputFormat::Text) {
      files.push_back(s.file.path);
      continue;
    }
    if (jsonl_text.empty()) jsonl_text = rt::temp_path_beside(out_dir / "tokenizer-training.txt");
    std::ofstream out(jsonl_text, std::ios::binary | std::ios::app);
    DocumentReader reader(s.file, config);
    std::string doc;
    while (reader.next(doc)) out << doc << "\n\n";
    if (!out) throw std::runtime_error(jsonl_text.string() + ": write failed");
  }
  if (!jsonl_text.empty()) files.push_back(jsonl_text);
  const auto start = std::chrono::steady_clock::now();
  rt::BpeTrainOptions opt;
  opt.vocab_size = t.vocab_size;
  opt.min_frequency = t.min_frequency;
  opt.special_tokens = t.special_tokens;
  opt.threads = resolve_threads(config.threads);
  rt::Tokenizer tok = [&] {
    try {
      return rt::train_bpe(files, opt);
    } catch (...) {
      if (!jsonl_text.empty()) fs::remove(jsonl_text);
      throw;
    }
  }();
  if (!jsonl_text.empty()) fs::remove(jsonl_text);
  const fs::path path = out_dir / "tokenizer.json";
  tok.save(path);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log << "data prep: trained a " << tok.vocab_size() << "-id BPE in " << std::fixed << std::setprecision(1) << secs
      << " s -> " << path.string() << "\n";
  meta = {{"path", path.string()}, {"sha256", rt::sha256_file(path)}, {"trained", true},
          {"train_tokenizer", {{"vocab_size", t.vocab_size}, {"min_frequency", t.min_frequency},
                               {"special_tokens", t.special_tokens}}}};
  return tok;
}

// Temporaries a killed run left in the output folder and its split folders go (those of
// processes that still run stay): they are no part of the data, and the artifact's manifest and
// content digest, which take every file of the folder, would count them.
void remove_dead_temporaries(const fs::path& out_dir) {
  rt::remove_dead_temporaries(out_dir);
  for (const char* split : kSplitNames) rt::remove_dead_temporaries(out_dir / split);
}

void prepare(const PrepConfig& config, const fs::path& default_out, std::ostream& log, fs::path* written) {
  check_preparable(config);
  fs::path out_dir = config.output.value_or(default_out);
  if (out_dir.empty()) throw std::invalid_argument("data.output: missing, and no output folder was given");
  out_dir = fs::absolute(out_dir).lexically_normal();
  if (written) *written = out_dir;
  fs::create_directories(out_dir);
  // metadata.json marks the folder complete (the trainer prepares a folder without one). An
  // earlier run's goes before this run changes a file: killed halfway, this run leaves a folder
  // that is prepared again, not the old metadata over a mix of old and new shards.
  const fs::path marker = out_dir / "metadata.json";
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error(marker.string() + ": cannot remove the earlier run's metadata: " + std::strerror(errno));
  rt::fsync_path(out_dir);
  remove_dead_temporaries(out_dir);

  std::vector<SourceStats> sources;
  for (auto& f : collect_inputs(config.inputs)) sources.push_back({f, rt::sha256_file(f.path)});
  uint64_t input_bytes = 0;
  for (const auto& s : sources) input_bytes += s.file.size;
  log << "data prep: " << sources.size() << " input files, " << input_bytes << " bytes\n";

  nlohmann::json tokenizer_meta;
  const rt::Tokenizer tok = obtain_tokenizer(config, sources, out_dir, log, tokenizer_meta);
  int32_t eod = -1;
  if (config.append_eod) {
    const auto id = tok.token_to_id(config.eod_token);
    if (!id)
      throw std::invalid_argument("data.eod_token: \"" + config.eod_token + "\" is not a token of " +
                                  tokenizer_meta["path"].get<std::string>());
    eod = *id;
  }
  const auto dtype = rt::token_dtype_for_vocab(tok.vocab_size());
  tokenizer_meta["vocab_size"] = tok.vocab_size();
  if (config.append_eod) tokenizer_meta["eod_id"] = eod;

  const int threads = resolve_threads(config.threads);
  std::vector<std::unique_ptr<SplitShards>> splits;
  for (const char* name : kSplitNames)
    splits.push_back(std::make_unique<SplitShards>(out_dir / name, dtype, config.shard_size_tokens));
  SplitAssigner assign(config.split);

  const auto start = std::chrono::steady_clock::now();
  // Measured in the documents' bytes against the inputs' size (JSONL keys and separators are not
  // counted, so it ends a little short of the total until the last update says all was read).
  rt::Progress progress("tokenized", int64_t(input_bytes), 0, rt::Progress::Unit::bytes);
  int64_t tokenized_bytes = 0;
  BatchReader reader(sources, config);
  Batch current = reader.next();
  while (!current.texts.empty()) {
    // Tokenize this batch on every core while this thread reads the next one.
    auto encoded = std::async(std::launch::async, [&] { return encode_batch(tok, current.texts, threads); });
    Batch upcoming = reader.next();
    auto ids = encoded.get();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (config.append_eod) ids[i].push_back(eod);
      splits[assign.next()]->add(ids[i]);
      auto& src = sources[current.source[i]];
      ++src.documents;
      src.tokens += ids[i].size();
      tokenized_bytes += int64_t(current.texts[i].size());
    }
    progress.update(tokenized_bytes);
    current = std::move(upcoming);
  }
  progress.update(int64_t(input_bytes));
  progress.finish();
  for (auto& s : splits) s->finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // blend.json: each shard weighted by its tokens, prefixes absolute as Megatron expects them.
  nlohmann::json blend = nlohmann::json::object();
  nlohmann::json split_meta = nlohmann::json::object();
  uint64_t total_tokens = 0, total_docs = 0, total_shards = 0;
  rt::Sha256 content;
  for (size_t s = 0; s < splits.size(); ++s) {
    const auto& shards = splits[s]->shards();
    const double split_tokens = static_cast<double>(splits[s]->tokens());
    nlohmann::json list = nlohmann::json::array(), shard_meta = nlohmann::json::array();
    for (const auto& sh : shards) {
      list.push_back(split_tokens > 0 ? static_cast<double>(sh.tokens) / split_tokens : 0.0);
      list.push_back(sh.prefix.string());
      const std::string bin_digest = rt::sha256_file(rt::bin_path(sh.prefix));
      const std::string idx_digest = rt::sha256_file(rt::idx_path(sh.prefix));
      content.update(bin_digest);
      content.update(idx_digest);
      shard_meta.push_back({{"prefix", sh.prefix.string()}, {"tokens", sh.tokens}, {"documents", sh.documents},
                            {"bin_sha256", bin_digest}, {"idx_sha256", idx_digest}});
    }
    blend[kSplitNames[s]] = list;
    split_meta[kSplitNames[s]] = {{"tokens", splits[s]->tokens()},
                                  {"documents", splits[s]->documents()},
                                  {"samples_per_epoch", splits[s]->tokens() / static_cast<uint64_t>(config.seq_length)},
                                  {"shards", shard_meta}};
    total_tokens += splits[s]->tokens();
    total_docs += splits[s]->documents();
    total_shards += shards.size();
  }
  const fs::path blend_path = out_dir / "blend.json";
  rt::write_file_atomic(blend_path, blend.dump(2) + "\n");

  nlohmann::json source_meta = nlohmann::json::array();
  uint64_t skipped = 0;
  for (const auto& s : sources) {
    source_meta.push_back({{"path", fs::absolute(s.file.path).lexically_normal().string()},
                           {"size", s.file.size},
                           {"sha256", s.sha256},
                           {"format", s.file.format == InputFormat::Jsonl ? "jsonl" : "text"},
                           {"documents", s.documents},
                           {"tokens", s.tokens}});
    skipped += s.skipped;
  }
  const nlohmann::json metadata = {
      {"type", "PretrainBlendsArtifact"},
      {"name", config.name},
      {"path", out_dir.string()},
      {"created_at", rt::utc_now()},
      {"producer", "nemokit data prep pretrain"},
      {"total_tokens", total_tokens},
      {"documents", total_docs},
      {"sequences", total_docs},
      {"shards", total_shards},
      {"seq_length", config.seq_length},
      {"dtype", rt::token_dtype_name(dtype)},
      {"append_eod", config.append_eod},
      {"blend_path", blend_path.string()},
      {"splits", split_meta},
      {"tokenizer", tokenizer_meta},
      {"source_datasets", source_meta},
      {"content_digest", content.finish_digest()},
      {"config", config.table},
      {"tracking", {{"used_artifacts", nlohmann::json::array()}}},
  };
  // Written last: its presence says the artifact is complete.
  rt::write_file_atomic(out_dir / "metadata.json", metadata.dump(2) + "\n");

  log << "data prep: " << total_docs << " documents (" << skipped << " blank skipped), " << total_tokens
      << " tokens in " << total_shards << " shards; train " << splits[0]->tokens() << ", valid "
      << splits[1]->tokens() << ", test " << splits[2]->tokens() << " tokens\n";
  log << "data prep: tokenized " << input_bytes << " bytes in " << std::fixed << std::setprecision(2) << secs
      << " s on " << threads << " threads (" << std::setprecision(0)
      << (secs > 0 ? static_cast<double>(total_tokens) / secs : 0.0) << " tokens/s)\n";
  log << "data prep: wrote " << (out_dir / "metadata.json").string() << "\n";
}

// Runs `step` as `nemokit data prep` reports it: 0, else 2 after a config error (the message
// names the key), 1 after any other failure.
template <class Step>
int reported(std::ostream& log, Step&& step) {
  try {
    step();
    return 0;
  } catch (const std::invalid_argument& e) {
    log << "data prep: config error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    log << "data prep: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int run_pretrain_data_prep(const PrepConfig& config, const fs::path& default_out, std::ostream& log, fs::path* written) {
  return reported(log, [&] { prepare(config, default_out, log, written); });
}

int run_pretrain_data_prep(const nlohmann::json& data_config, const fs::path& default_out, std::ostream& log,
                           fs::path* written) {
  return reported(log, [&] { prepare(parse_prep_config(data_config), default_out, log, written); });
}

}  // namespace nemokit::pretrain
