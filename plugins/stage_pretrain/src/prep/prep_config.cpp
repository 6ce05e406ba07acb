#include "prep/prep_config.hpp"

#include "nemokit/runtime/run/paths.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <stdexcept>

namespace nemokit::pretrain {
using rt::expand_home;
namespace {

[[noreturn]] void bad_key(const std::string& key, const std::string& what) {
  throw std::invalid_argument("data." + key + ": " + what);
}

std::string get_string(const nlohmann::json& j, const std::string& key) {
  if (!j.is_string()) bad_key(key, "must be a string, got " + std::string(j.type_name()));
  return j.get<std::string>();
}

int64_t get_int(const nlohmann::json& j, const std::string& key, int64_t min) {
  if (!j.is_number_integer()) bad_key(key, "must be an integer, got " + std::string(j.type_name()));
  const auto v = j.get<int64_t>();
  if (v < min) bad_key(key, "must be at least " + std::to_string(min) + ", got " + std::to_string(v));
  return v;
}

bool get_bool(const nlohmann::json& j, const std::string& key) {
  if (!j.is_boolean()) bad_key(key, "must be true or false, got " + std::string(j.type_name()));
  return j.get<bool>();
}

std::vector<double> parse_split(const nlohmann::json& j) {
  std::vector<double> parts;
  if (j.is_string()) {
    // Megatron's form: "98,1,1" (also "98/1/1").
    std::string s = j.get<std::string>();
    for (char& c : s)
      if (c == '/') c = ',';
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
      try {
        size_t used = 0;
        parts.push_back(std::stod(item, &used));
        if (item.find_first_not_of(" \t", used) != std::string::npos) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        bad_key("split", "\"" + item + "\" is not a number (expected e.g. \"98,1,1\")");
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (!v.is_number()) bad_key("split", "array items must be numbers");
      parts.push_back(v.get<double>());
    }
  } else {
    bad_key("split", "must be a string like \"98,1,1\" or an array of 3 numbers");
  }
  if (parts.size() != 3) bad_key("split", "needs 3 parts (train, valid, test), got " + std::to_string(parts.size()));
  for (double p : parts)
    if (!(p >= 0)) bad_key("split", "parts must be >= 0");
  if (!(parts[0] > 0)) bad_key("split", "the train part must be > 0");
  return parts;
}

}  // namespace

PrepConfig parse_prep_config(const nlohmann::json& data) {
  if (!data.is_object()) throw std::invalid_argument("data: must be a table");
  static const std::set<std::string> known = {
      "inputs", "text_split", "jsonl_text_field", "tokenizer", "train_tokenizer", "append_eod", "eod_token",
      "seq_length", "split", "shard_size_tokens", "min_document_chars", "threads", "name", "output"};
  for (const auto& [key, value] : data.items())
    if (!known.count(key)) bad_key(key, "unknown key (see plugins/stage_pretrain/README-data.md)");

  PrepConfig c;
  c.table = data;
  if (data.contains("inputs")) {
    const auto& inputs = data.at("inputs");
    if (inputs.is_string()) {
      c.inputs.push_back(expand_home(inputs.get<std::string>()));
    } else if (inputs.is_array() && !inputs.empty()) {
      for (size_t i = 0; i < inputs.size(); ++i)
        c.inputs.push_back(expand_home(get_string(inputs[i], "inputs[" + std::to_string(i) + "]")));
    } else {
      bad_key("inputs", "must be a path or a non-empty array of paths");
    }
  }

  if (data.contains("text_split")) {
    const std::string s = get_string(data.at("text_split"), "text_split");
    if (s == "paragraph") c.text_split = TextSplit::Paragraph;
    else if (s == "line") c.text_split = TextSplit::Line;
    else if (s == "file") c.text_split = TextSplit::File;
    else bad_key("text_split", "must be \"paragraph\", \"line\" or \"file\", got \"" + s + "\"");
  }
  if (data.contains("jsonl_text_field")) {
    c.jsonl_text_field = get_string(data.at("jsonl_text_field"), "jsonl_text_field");
    if (c.jsonl_text_field.empty()) bad_key("jsonl_text_field", "must not be empty");
  }

  const bool has_tok = data.contains("tokenizer"), has_train = data.contains("train_tokenizer");
  if (has_tok) c.tokenizer = expand_home(get_string(data.at("tokenizer"), "tokenizer"));
  if (has_train) {
    const auto& t = data.at("train_tokenizer");
    if (!t.is_object()) bad_key("train_tokenizer", "must be a table like {vocab_size = 4096}");
    TokenizerTraining tt;
    for (const auto& [key, value] : t.items()) {
      const std::string full = "train_tokenizer." + key;
      if (key == "vocab_size") {
        tt.vocab_size = static_cast<int32_t>(get_int(value, full, 257));
        if (tt.vocab_size > 1'000'000) bad_key(full, "is larger than 1000000");
      } else if (key == "min_frequency") {
        tt.min_frequency = static_cast<int32_t>(get_int(value, full, 1));
      } else if (key == "special_tokens") {
        if (!value.is_array()) bad_key(full, "must be an array of strings");
        tt.special_tokens.clear();
        for (size_t i = 0; i < value.size(); ++i)
          tt.special_tokens.push_back(get_string(value[i], full + "[" + std::to_string(i) + "]"));
      } else {
        bad_key(full, "unknown key (vocab_size, min_frequency, special_tokens)");
      }
    }
    if (!t.contains("vocab_size")) bad_key("train_tokenizer.vocab_size", "missing");
    c.train_tokenizer = tt;
  }

  if (data.contains("append_eod")) c.append_eod = get_bool(data.at("append_eod"), "append_eod");
  if (data.contains("eod_token")) c.eod_token = get_string(data.at("eod_token"), "eod_token");
  if (c.train_tokenizer && c.append_eod) {
    auto& specials = c.train_tokenizer->special_tokens;
    if (std::find(specials.begin(), specials.end(), c.eod_token) == specials.end())
      bad_key("eod_token", "\"" + c.eod_token + "\" is not among data.train_tokenizer.special_tokens");
  }
  if (data.contains("seq_length")) c.seq_length = get_int(data.at("seq_length"), "seq_length", 1);
  if (data.contains("split")) c.split = parse_split(data.at("split"));
  if (data.contains("shard_size_tokens"))
    c.shard_size_tokens = get_int(data.at("shard_size_tokens"), "shard_size_tokens", 1);
  if (data.contains("min_document_chars"))
    c.min_document_chars = get_int(data.at("min_document_chars"), "min_document_chars", 1);
  if (data.contains("threads")) c.threads = static_cast<int>(get_int(data.at("threads"), "threads", 0));
  if (data.contains("name")) {
    c.name = get_string(data.at("name"), "name");
    if (c.name.empty() || c.name.find('/') != std::string::npos) bad_key("name", "must be a plain non-empty name");
  }
  if (data.contains("output")) c.output = expand_home(get_string(data.at("output"), "output"));
  return c;
}

const nlohmann::json& data_table(const nlohmann::json& stage_config) {
  if (!stage_config.contains("data") || !stage_config["data"].is_object())
    throw std::invalid_argument("data: the table is missing");
  return stage_config["data"];
}

void check_preparable(const PrepConfig& c) {
  if (c.inputs.empty()) bad_key("inputs", "missing: list the text/JSONL files or folders to prepare");
  if (c.tokenizer.has_value() == c.train_tokenizer.has_value())
    bad_key(c.tokenizer ? "train_tokenizer" : "tokenizer",
            "give exactly one of data.tokenizer (a tokenizer.json) and data.train_tokenizer ({vocab_size = N})");
}

}  // namespace nemokit::pretrain
