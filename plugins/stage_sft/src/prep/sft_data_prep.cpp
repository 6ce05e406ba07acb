#include "prep/sft_data_prep.hpp"

#include "chat/chat_template.hpp"
#include "data/packed_split.hpp"
#include "omni/media_items.hpp"
#include "prep/tokenize_chat.hpp"

#include "nemokit/runtime/atomic_file.hpp"
#include "nemokit/runtime/parallel.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/utc_time.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "nemokit/runtime/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <stdexcept>

namespace nemokit::sft {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

enum Split { kTrain = 0, kValid = 1 };

struct Record {
  std::string line;
  std::string origin;  // "file:line"
  size_t source = 0;   // index into the source list
  Split split = kTrain;
  // filled in parallel
  TokenizedChat tokens;
  std::vector<MediaItem> media;       // omni3: images, videos, clips
  std::vector<int64_t> media_at;      // each item's first position in `tokens`
  std::string error, reason;  // a bad record: the message and its category
};

struct Source {
  fs::path path;
  bool validation = false;
  int64_t records = 0, skipped = 0;
};

// FNV-1a: a stable hash of the record's text, so the held-out share is the same on every run
// and does not move when other lines are added.
uint64_t fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void read_records(Source& src, size_t index, double valid_fraction, uint64_t seed, std::vector<Record>& out) {
  std::ifstream in(src.path);
  if (!in) throw std::invalid_argument(src.path.string() + ": cannot open (data.inputs / data.validation)");
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Record r;
    r.origin = src.path.string() + ":" + std::to_string(n);
    r.source = index;
    if (src.validation) r.split = kValid;
    else if (valid_fraction > 0 && double(fnv1a(line, seed) >> 11) * 0x1.0p-53 < valid_fraction) r.split = kValid;
    r.line = std::move(line);
    out.push_back(std::move(r));
    ++src.records;
  }
}

void process(Record& r, const rt::Tokenizer& tok, const SftPrepConfig& c, const fs::path& base) {
  nlohmann::ordered_json record;  // the template keeps the record's key order (tool arguments)
  try {
    record = nlohmann::ordered_json::parse(r.line);
  } catch (const nlohmann::ordered_json::parse_error& e) {
    r.error = r.origin + ": not valid JSON: " + e.what(), r.reason = "invalid JSON";
    return;
  }
  std::vector<ChatSegment> segments;
  try {
    segments = render_chat(record, RenderOptions{c.enable_thinking, false}, r.origin);
  } catch (const std::invalid_argument& e) {
    r.error = e.what(), r.reason = "malformed conversation";
    return;
  }
  r.tokens = tokenize_chat(tok, segments);
  if (c.media.enabled() || record.contains("images") || record.contains("videos") || record.contains("audios")) {
    try {
      r.media = load_media(record, base, c.media, r.origin);
      r.media_at = expand_placeholders(r.tokens, r.media, tok, r.origin);
    } catch (const std::invalid_argument& e) {
      r.error = e.what(), r.reason = "bad media";
      r.tokens = {}, r.media.clear();
      return;
    }
  }
  size_t trained = 0;
  for (uint8_t t : r.tokens.trained) trained += t;
  if (trained == 0) {
    r.error = r.origin + ": the conversation has no assistant turn to train on", r.reason = "no assistant turn";
  } else if (int64_t(r.tokens.ids.size()) > c.pack_size) {
    r.error = r.origin + ": " + std::to_string(r.tokens.ids.size()) + " tokens do not fit data.pack_size = " +
              std::to_string(c.pack_size) + " (raise pack_size, or set data.skip_bad_records = true)";
    r.reason = "longer than pack_size";
  }
  if (!r.error.empty()) r.tokens = {}, r.media.clear();
  r.line.clear();
  r.line.shrink_to_fit();
}

struct SplitStats {
  int64_t documents = 0, packs = 0, tokens = 0, trained_tokens = 0, padding = 0;
};

PackedSplit pack_split(const std::vector<const Record*>& docs, const SftPrepConfig& c, int32_t pad_id, SplitStats& st) {
  std::vector<int64_t> lengths;
  for (const Record* r : docs) lengths.push_back(int64_t(r->tokens.ids.size()));
  auto packs = pack_documents(lengths, c.pack_size, c.packer, c.seed);
  PackedSplit s;
  s.pack_size = c.pack_size;
  if (c.media.vision) s.tile_size = c.media.vision->image_size;
  if (c.media.audio) s.mel_bins = c.media.audio->num_mel_bins;
  s.input_ids.assign(packs.size() * size_t(c.pack_size), pad_id);
  s.loss_mask.assign(packs.size() * size_t(c.pack_size), 0);
  s.seq_start_ptr.push_back(0);
  for (size_t p = 0; p < packs.size(); ++p) {
    int64_t pos = 0;
    for (int64_t d : packs[p]) {
      const TokenizedChat& t = docs[size_t(d)]->tokens;
      const int64_t L = int64_t(t.ids.size());
      s.seq_start_id.push_back(int32_t(pos));
      int32_t* ids = s.input_ids.data() + p * size_t(c.pack_size) + pos;
      uint8_t* mask = s.loss_mask.data() + p * size_t(c.pack_size) + pos;
      std::copy(t.ids.begin(), t.ids.end(), ids);
      // Shifted: position i is trained when token i+1 (its target) is an assistant token.
      for (int64_t i = 0; i + 1 < L; ++i) mask[i] = t.trained[size_t(i) + 1];
      for (int64_t i = 0; i < L; ++i) st.trained_tokens += mask[i];
      const Record& r = *docs[size_t(d)];
      for (size_t j = 0; j < r.media.size(); ++j) {
        const MediaItem& m = r.media[j];
        const bool vision = m.modality == rt::Modality::vision;
        const int64_t first = vision ? int64_t(s.tiles.size()) / (3 * s.tile_size * s.tile_size)
                                     : int64_t(s.audio.size()) / s.mel_bins;
        s.media.insert(s.media.end(), {int64_t(p), pos + r.media_at[j], vision ? 0 : 1, first, m.count, m.tokens});
        if (vision) s.tiles.insert(s.tiles.end(), m.tiles.begin(), m.tiles.end());
        else s.audio.insert(s.audio.end(), m.frames.begin(), m.frames.end());
      }
      pos += L;
    }
    s.seq_start_ptr.push_back(int64_t(s.seq_start_id.size()));
    s.pack_length.push_back(int32_t(pos));
    st.tokens += pos;
    st.padding += c.pack_size - pos;
  }
  st.documents = int64_t(docs.size());
  st.packs = int64_t(packs.size());
  return s;
}

}  // namespace

void run_sft_data_prep(const SftPrepConfig& c, const fs::path& tokenizer_file, const fs::path& out_dir, std::ostream& log) {
  const auto start = std::chrono::steady_clock::now();
  // omni3 data: <image>, <video> and <audio> join the tokenizer (the model grows to match).
  const rt::Tokenizer tok = c.media.enabled() ? with_media_tokens(rt::Tokenizer::load(tokenizer_file))
                                              : rt::Tokenizer::load(tokenizer_file);
  require_chat_tokens(tok, tokenizer_file);
  int32_t pad_id = 0;
  for (const char* name : {"<|endoftext|>", "<|im_end|>"})
    if (auto id = tok.token_to_id(name)) {
      pad_id = *id;
      break;
    }

  std::vector<Source> sources;
  for (const auto& p : c.inputs) sources.push_back({p, false});
  for (const auto& p : c.validation) sources.push_back({p, true});
  std::vector<Record> records;
  for (size_t i = 0; i < sources.size(); ++i)
    read_records(sources[i], i, c.validation.empty() ? c.valid_fraction : 0.0, c.seed, records);
  if (records.empty()) throw std::invalid_argument("data.inputs: the files hold no records");

  // In blocks, every core on each, so that the progress is shown from this thread alone.
  const int64_t n = int64_t(records.size()), block = 1024;
  rt::Progress progress("conversation", n, std::max<int64_t>(1, n / 10));
  for (int64_t first = 0; first < n; first += block) {
    rt::parallel_for(std::min(block, n - first), [&](int64_t b, int64_t e) {
      for (int64_t i = first + b; i < first + e; ++i)
        process(records[size_t(i)], tok, c, sources[records[size_t(i)].source].path.parent_path());
    });
    progress.update(std::min(n, first + block));
  }
  progress.finish();

  std::map<std::string, int64_t> skipped;
  std::vector<const Record*> split_docs[2];
  int64_t shown = 0;
  for (const Record& r : records) {
    if (r.error.empty()) {
      split_docs[r.split].push_back(&r);
      continue;
    }
    if (!c.skip_bad_records) throw std::invalid_argument(r.error);
    ++skipped[r.reason];
    ++sources[r.source].skipped;
    if (shown++ < 5) log << "data prep: skipped " << r.error << "\n";
  }
  if (split_docs[kTrain].empty()) throw std::invalid_argument("data.inputs: no usable training records");
  if (split_docs[kValid].empty())
    log << "data prep: no validation records (set data.validation or data.valid_fraction > 0 for validation loss)\n";

  const fs::path tmp = rt::fresh_temp_dir(out_dir);
  SplitStats stats[2];
  const char* names[2] = {"train", "validation"};
  json splits = json::object();
  rt::Sha256 content;
  for (int s = 0; s < 2; ++s) {
    PackedSplit packed = pack_split(split_docs[s], c, pad_id, stats[s]);
    if (packed.packs() == 0) continue;
    packed.write(tmp / names[s]);
    for (const char* f : {"input_ids.npy", "loss_mask.npy", "seq_start_id.npy", "seq_start_ptr.npy", "pack_length.npy",
                          "media.npy", "tiles.npy", "audio.npy"})
      if (fs::exists(tmp / names[s] / f)) content.update(rt::sha256_file(tmp / names[s] / f));
    const SplitStats& st = stats[s];
    splits[names[s]] = {{"path", names[s]}, {"documents", st.documents}, {"packs", st.packs}, {"tokens", st.tokens},
                        {"trained_tokens", st.trained_tokens}, {"padding_tokens", st.padding},
                        {"packing_efficiency", st.packs ? double(st.tokens) / double(st.packs * c.pack_size) : 0.0}};
  }
  if (c.media.enabled()) tok.save(tmp / "tokenizer.json");
  else fs::copy_file(tokenizer_file, tmp / "tokenizer.json", fs::copy_options::overwrite_existing);

  json source_meta = json::array();
  for (const Source& s : sources)
    source_meta.push_back({{"path", s.path.string()}, {"sha256", rt::sha256_file(s.path)}, {"split", s.validation ? "validation" : "train"},
                           {"records", s.records}, {"skipped", s.skipped}});
  json config = {{"inputs", json::array()}, {"validation", json::array()}, {"valid_fraction", c.valid_fraction},
                 {"chat_template", c.chat_template}, {"enable_thinking", c.enable_thinking}, {"pack_size", c.pack_size},
                 {"packer", packer_name(c.packer)}, {"skip_bad_records", c.skip_bad_records}, {"seed", c.seed}};
  for (const auto& p : c.inputs) config["inputs"].push_back(p.string());
  for (const auto& p : c.validation) config["validation"].push_back(p.string());
  const json metadata = {
      {"type", "SFTDataArtifact"},
      {"name", c.name},
      {"path", out_dir.string()},
      {"created_at", rt::utc_now()},
      {"producer", "nemokit data prep sft"},
      {"format", "npy-packed"},
      {"pack_size", c.pack_size},
      {"packer", packer_name(c.packer)},
      {"chat_template", c.chat_template},
      {"pad_id", pad_id},
      {"splits", splits},
      {"skipped_records", skipped},
      {"tokenizer", {{"path", "tokenizer.json"}, {"source", tokenizer_file.string()}, {"sha256", rt::sha256_file(tmp / "tokenizer.json")},
                     {"vocab_size", tok.vocab_size()}}},
      {"source_datasets", source_meta},
      {"content_digest", content.finish_digest()},
      {"media", c.media.enabled() ? c.media.to_json() : json(nullptr)},
      {"config", config},
      {"tracking", {{"used_artifacts", json::array()}}},
  };
  rt::write_file_atomic(tmp / "metadata.json", metadata.dump(2) + "\n");
  fs::create_directories(out_dir.parent_path());
  rt::replace_dir_atomic(tmp, out_dir);

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t total_skipped = 0;
  for (const auto& [_, n] : skipped) total_skipped += n;
  log << "data prep: " << records.size() << " conversations (" << total_skipped << " skipped) -> train " << stats[kTrain].documents
      << " in " << stats[kTrain].packs << " packs, validation " << stats[kValid].documents << " in " << stats[kValid].packs
      << " packs of " << c.pack_size << " tokens (" << packer_name(c.packer) << ", "
      << int(100.0 * double(stats[kTrain].tokens) / double(std::max<int64_t>(1, stats[kTrain].packs * c.pack_size)))
      << "% full); " << stats[kTrain].trained_tokens << " trained tokens; " << secs << " s\n";
  log << "data prep: wrote " << (out_dir / "metadata.json").string() << "\n";
}

}  // namespace nemokit::sft
