// Reads Hugging Face's tokenizer.json into the tables encoding runs on. Everything the byte-level
// BPE pipeline cannot honour exactly is refused with the file and the JSON key, rather than
// silently encoding differently from the Python library.

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "byte_level.hpp"
#include "nemokit/runtime/json_file.hpp"
#include "tokenizer_impl.hpp"

namespace nemokit::rt::tok {
namespace {

using Json = nlohmann::ordered_json;

class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    throw std::runtime_error(origin_ + ": key '" + key + "': " + message);
  }

  // A field that is absent or null reads as "not set", as Hugging Face's serde defaults do.
  static const Json* optional_field(const Json& obj, const char* name) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool get_bool(const Json& obj, const std::string& key, const char* name, bool fallback) const {
    const Json* v = optional_field(obj, name);
    if (!v) return fallback;
    if (!v->is_boolean()) fail(key + "." + name, "expected true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string get_string(const Json& obj, const std::string& key, const char* name) const {
    const Json* v = optional_field(obj, name);
    if (!v) fail(key + "." + name, "missing");
    if (!v->is_string()) fail(key + "." + name, "expected a string, got " + v->dump());
    return v->get<std::string>();
  }
  // Tables are indexed by id, so an id sizes them: the largest vocabularies in use have a few
  // hundred thousand tokens, and one stray id in the billions must not allocate gigabytes.
  static constexpr int64_t kIdLimit = int64_t(1) << 22;
  int32_t to_id(const Json& v, const std::string& key) const {
    if (!v.is_number_integer()) fail(key, "expected a token id (integer), got " + v.dump());
    const auto id = v.get<int64_t>();
    if (id < 0 || id >= kIdLimit)
      fail(key, "token id " + v.dump() + " out of range (0 to " + std::to_string(kIdLimit - 1) + ")");
    return int32_t(id);
  }

  void load_model(const Json& doc, Tokenizer::Impl& impl) const;
  void load_added(const Json& doc, Tokenizer::Impl& impl) const;
  void load_normalizer(const Json& doc) const;
  void load_pre_tokenizer(const Json& doc, Tokenizer::Impl& impl) const;
  void load_decoder(const Json& doc) const;

 private:
  // Adds one pre_tokenizer entry; returns whether it contained the ByteLevel step.
  bool add_pre_step(const Json& step, const std::string& key, PreTokenizer& pre,
                    bool& byte_level_seen) const;
  std::string origin_;
};

void Loader::load_model(const Json& doc, Tokenizer::Impl& impl) const {
  auto it = doc.find("model");
  if (it == doc.end() || !it->is_object()) fail("model", "missing or not an object");
  const Json& m = *it;
  if (const Json* type = optional_field(m, "type")) {
    if (!type->is_string() || type->get<std::string>() != "BPE")
      fail("model.type", "unsupported model type " + type->dump() + " (only BPE is supported)");
  }
  if (const Json* d = optional_field(m, "dropout")) {
    if (!d->is_number() || d->get<double>() != 0.0)
      fail("model.dropout", "BPE dropout is not supported (encoding must be deterministic)");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const Json* v = optional_field(m, affix)) {
      if (!v->is_string() || !v->get<std::string>().empty())
        fail(std::string("model.") + affix, "not supported by byte-level BPE, got " + v->dump());
    }
  }
  if (get_bool(m, "model", "byte_fallback", false))
    fail("model.byte_fallback", "byte fallback is not supported (byte-level BPE needs none)");

  auto& bpe = impl.model;
  auto vit = m.find("vocab");
  if (vit == m.end() || !vit->is_object()) fail("model.vocab", "missing or not an object");
  bpe.by_spelling.reserve(vit->size());
  for (auto& [token, idj] : vit->items()) {
    const int32_t id = to_id(idj, "model.vocab." + token);
    if (size_t(id) >= bpe.spelling.size()) bpe.spelling.resize(size_t(id) + 1);
    bpe.spelling[id] = token;
    bpe.by_spelling[token] = id;
  }
  bpe.byte_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    std::string s;
    append_utf8(s, byte_to_codepoint(uint8_t(b)));
    if (auto f = bpe.by_spelling.find(s); f != bpe.by_spelling.end()) bpe.byte_id[b] = f->second;
  }

  auto mit = m.find("merges");
  if (mit == m.end() || mit->is_null()) fail("model.merges", "missing");
  if (!mit->is_array()) fail("model.merges", "expected an array");
  bpe.merges.reserve(mit->size());
  bpe.merge_list.reserve(mit->size());
  int32_t rank = 0;
  for (const auto& entry : *mit) {
    const std::string key = "model.merges[" + std::to_string(rank) + "]";
    std::string left, right;
    if (entry.is_string()) {
      // The older "left right" form: exactly one space, as Hugging Face requires.
      const auto& s = entry.get_ref<const std::string&>();
      const auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail(key, "expected \"left right\" with one space, got " + entry.dump());
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      fail(key, "expected \"left right\" or [\"left\", \"right\"], got " + entry.dump());
    }
    auto find = [&](const std::string& t) {
      auto f = bpe.by_spelling.find(t);
      if (f == bpe.by_spelling.end()) fail(key, "token \"" + t + "\" is not in model.vocab");
      return f->second;
    };
    const int32_t a = find(left), b = find(right), merged = find(left + right);
    bpe.merges.insert(a, b, {rank, merged});
    bpe.merge_list.emplace_back(a, b);
    ++rank;
  }

  if (const Json* unk = optional_field(m, "unk_token")) {
    if (!unk->is_string()) fail("model.unk_token", "expected a string or null");
    auto f = bpe.by_spelling.find(unk->get<std::string>());
    if (f == bpe.by_spelling.end()) fail("model.unk_token", "\"" + unk->get<std::string>() + "\" is not in model.vocab");
    bpe.unk_id = f->second;
  }
  bpe.fuse_unk = get_bool(m, "model", "fuse_unk", false);
  bpe.ignore_merges = get_bool(m, "model", "ignore_merges", false);
  if (bpe.ignore_merges) {
    for (auto& [spelled, id] : bpe.by_spelling)
      if (auto raw = byte_level_to_bytes(spelled)) bpe.by_bytes[*raw] = id;
  }
}

void Loader::load_added(const Json& doc, Tokenizer::Impl& impl) const {
  auto it = doc.find("added_tokens");
  if (it == doc.end() || it->is_null()) return;
  if (!it->is_array()) fail("added_tokens", "expected an array");
  std::vector<AddedTokenSpec> specs;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& t = (*it)[i];
    const std::string key = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) fail(key, "expected an object");
    AddedTokenSpec s;
    auto idj = t.find("id");
    if (idj == t.end()) fail(key + ".id", "missing");
    s.id = to_id(*idj, key + ".id");
    s.content = get_string(t, key, "content");
    if (s.content.empty()) fail(key + ".content", "empty token text");
    s.special = get_bool(t, key, "special", false);
    s.single_word = get_bool(t, key, "single_word", false);
    s.lstrip = get_bool(t, key, "lstrip", false);
    s.rstrip = get_bool(t, key, "rstrip", false);
    s.normalized = get_bool(t, key, "normalized", !s.special);
    impl.added.push_back(AddedToken{s.content, s.id, s.special});
    impl.added_by_content[s.content] = s.id;
    specs.push_back(std::move(s));
  }
  impl.added_matcher = AddedTokenMatcher(specs);
}

void Loader::load_normalizer(const Json& doc) const {
  auto it = doc.find("normalizer");
  if (it == doc.end() || it->is_null()) return;
  // An empty Sequence normalizes nothing; anything else would change the text before BPE.
  if (it->is_object() && it->value("type", "") == "Sequence") {
    auto n = it->find("normalizers");
    if (n != it->end() && n->is_array() && n->empty()) return;
  }
  const std::string type = it->is_object() ? it->value("type", std::string("?")) : it->dump();
  fail("normalizer.type", "unsupported normalizer \"" + type + "\" (only null is supported)");
}

bool Loader::add_pre_step(const Json& step, const std::string& key, PreTokenizer& pre,
                          bool& byte_level_seen) const {
  if (!step.is_object()) fail(key, "expected an object");
  auto tj = step.find("type");
  if (tj == step.end() || !tj->is_string()) fail(key + ".type", "missing");
  const std::string type = tj->get<std::string>();
  if (byte_level_seen)
    fail(key + ".type", "\"" + type + "\" after ByteLevel is not supported (ByteLevel must come last)");
  if (type == "Sequence") {
    auto list = step.find("pretokenizers");
    if (list == step.end() || !list->is_array()) fail(key + ".pretokenizers", "missing or not an array");
    for (size_t i = 0; i < list->size(); ++i)
      add_pre_step((*list)[i], key + ".pretokenizers[" + std::to_string(i) + "]", pre,
                   byte_level_seen);
    return byte_level_seen;
  }
  if (type == "ByteLevel") {
    // Hugging Face's defaults when a field is absent: add_prefix_space and use_regex are true.
    if (get_bool(step, key, "add_prefix_space", true)) pre.add_prefix_space();
    if (get_bool(step, key, "use_regex", true))
      pre.add_split(std::make_shared<RegexSplitter>(std::string(kGpt2Pattern), false),
                    SplitBehavior::Isolated, false);
    byte_level_seen = true;
    return true;
  }
  if (type == "Digits") {
    const bool single = get_bool(step, key, "individual_digits", false);
    pre.add_split(std::make_shared<RegexSplitter>(single ? R"(\p{N})" : R"(\p{N}+)", false),
                  SplitBehavior::Isolated, false);
    return false;
  }
  if (type == "Split") {
    auto pj = step.find("pattern");
    if (pj == step.end() || !pj->is_object() || pj->size() != 1)
      fail(key + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    const bool literal = pj->contains("String");
    if (!literal && !pj->contains("Regex"))
      fail(key + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
    const Json& text = literal ? (*pj)["String"] : (*pj)["Regex"];
    if (!text.is_string()) fail(key + ".pattern", "the pattern must be a string");
    std::shared_ptr<RegexSplitter> regex;
    try {
      regex = std::make_shared<RegexSplitter>(text.get<std::string>(), literal);
    } catch (const std::runtime_error& e) {
      fail(key + ".pattern", e.what());
    }
    static const std::pair<const char*, SplitBehavior> kBehaviors[] = {
        {"Removed", SplitBehavior::Removed},
        {"Isolated", SplitBehavior::Isolated},
        {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
        {"MergedWithNext", SplitBehavior::MergedWithNext},
        {"Contiguous", SplitBehavior::Contiguous}};
    const std::string behavior = get_string(step, key, "behavior");
    SplitBehavior b{};
    bool known = false;
    for (auto [name, value] : kBehaviors)
      if (behavior == name) b = value, known = true;
    if (!known) fail(key + ".behavior", "unknown split behavior \"" + behavior + "\"");
    pre.add_split(std::move(regex), b, get_bool(step, key, "invert", false));
    return false;
  }
  fail(key + ".type", "unsupported pre-tokenizer \"" + type +
                          "\" (supported: ByteLevel, Split, Digits, Sequence)");
}

void Loader::load_pre_tokenizer(const Json& doc, Tokenizer::Impl& impl) const {
  auto it = doc.find("pre_tokenizer");
  if (it == doc.end() || it->is_null())
    fail("pre_tokenizer", "missing; a byte-level BPE tokenizer needs a ByteLevel pre-tokenizer");
  bool byte_level_seen = false;
  add_pre_step(*it, "pre_tokenizer", impl.pre_tokenizer, byte_level_seen);
  if (!byte_level_seen)
    fail("pre_tokenizer", "no ByteLevel step; only byte-level BPE tokenizers are supported");
}

void Loader::load_decoder(const Json& doc) const {
  auto it = doc.find("decoder");
  if (it == doc.end() || it->is_null()) return;  // byte-level text decodes the same way
  if (!it->is_object() || it->value("type", "") != "ByteLevel") {
    const std::string type = it->is_object() ? it->value("type", std::string("?")) : it->dump();
    fail("decoder.type", "unsupported decoder \"" + type + "\" (only ByteLevel is supported)");
  }
}

std::atomic<uint64_t> g_next_serial{1};

}  // namespace

std::shared_ptr<const Tokenizer::Impl> build_impl(Json doc, std::string origin) {
  Loader loader(origin);
  if (!doc.is_object()) throw std::runtime_error(origin + ": expected a JSON object at the top level");
  auto impl = std::make_shared<Tokenizer::Impl>();
  impl->origin = origin;
  impl->serial = g_next_serial.fetch_add(1);
  loader.load_model(doc, *impl);
  loader.load_added(doc, *impl);
  loader.load_normalizer(doc);
  loader.load_pre_tokenizer(doc, *impl);
  loader.load_decoder(doc);

  int32_t size = int32_t(impl->model.spelling.size());
  for (const auto& a : impl->added) size = std::max(size, a.id + 1);
  impl->vocab_size = size;
  impl->id_bytes.assign(size_t(size), {});
  impl->id_kind.assign(size_t(size), 0);
  // The ByteLevel decoder maps a token's characters back to bytes; a token with any character
  // outside the 256 stand-ins (typically an added token with a real space) is kept as written.
  auto decoded = [](const std::string& spelled) {
    auto raw = byte_level_to_bytes(spelled);
    return raw ? *raw : spelled;
  };
  for (size_t id = 0; id < impl->model.spelling.size(); ++id) {
    if (impl->model.by_spelling.count(impl->model.spelling[id]) &&
        impl->model.by_spelling.at(impl->model.spelling[id]) == int32_t(id)) {
      impl->id_bytes[id] = decoded(impl->model.spelling[id]);
      impl->id_kind[id] = 1;
    }
  }
  for (const auto& a : impl->added) {
    impl->id_bytes[a.id] = decoded(a.content);
    impl->id_kind[a.id] = a.special ? 3 : 2;
  }
  impl->json = std::move(doc);
  return impl;
}

}  // namespace nemokit::rt::tok

namespace nemokit::rt {

Tokenizer Tokenizer::from_json(std::string_view json_text, std::string_view origin) {
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(json_text.begin(), json_text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // Turn the byte offset into line:column so the reader can go straight to the spot.
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < json_text.size(); ++i) {
      if (json_text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    throw std::runtime_error(std::string(origin) + ":" + std::to_string(line) + ":" +
                             std::to_string(col) + ": invalid JSON: " + what);
  } catch (const nlohmann::json::exception& e) {  // a number no double holds (out_of_range.406)
    throw std::runtime_error(std::string(origin) + ": invalid JSON: " + json_error_text(e));
  }
  return Tokenizer(tok::build_impl(std::move(doc), std::string(origin)));
}

Tokenizer Tokenizer::load(const std::filesystem::path& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) {
    throw std::runtime_error(tokenizer_json.string() + ": cannot open: " +
                             std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw std::runtime_error(tokenizer_json.string() + ": read error");
  return from_json(buf.str(), tokenizer_json.string());
}

}  // namespace nemokit::rt
