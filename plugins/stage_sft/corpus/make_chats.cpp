// make_chats: turns WordNet, the riddles fortunes and the countries list into SFT conversations.
// Usage: make_chats WORDNET_DIR DICT_FILE RIDDLES_FILE COUNTRIES_FILE OUT_DIR
// Writes OUT_DIR/{train,val,eval}.jsonl and prints a one-line summary. Everything that decides
// what goes where is a hash of the text itself, so the same inputs always give the same bytes.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_sources.hpp"

namespace {

using Json = nlohmann::ordered_json;  // keeps "role" before "content", as chat data is written

// ~3% of words are held out: hash % 1000 < 30.
constexpr std::uint64_t kHeldOutPerMille = 30;
// The tiny SFT sees ~100 steps x 8 packs x 512 tokens: this many train definitions is plenty.
constexpr std::size_t kMaxTrainDefinitions = 18000;
constexpr std::size_t kMaxEvalDefinitions = 200;
constexpr std::size_t kMaxEvalCapitals = 100;
constexpr std::size_t kCapitalRepeats = 2;
// Riddles longer than this would not fit one 512-token pack with room to spare.
constexpr std::size_t kMaxRiddleChars = 700;
// Salts keep the independent hash decisions independent of each other.
constexpr std::uint64_t kSaltSubsample = 0x5eed0001, kSaltSystem = 0x5eed0002,
                        kSaltShuffle = 0x5eed0003, kSaltEval = 0x5eed0004;

const char* const kDictionarySystem = "You are a concise dictionary.";
const char* const kWriterSystem = "You are a helpful writing assistant.";
const char* const kGeographySystem = "You are a geography tutor. Answer in one sentence.";

bool held_out(const std::string& word) { return chats::word_hash(word) % 1000 < kHeldOutPerMille; }

// About one record in ten of a kind carries a system prompt, so system turns exist in the data.
bool with_system(const std::string& key) { return chats::word_hash(key, kSaltSystem) % 10 == 0; }

Json turn(const char* role, const std::string& content) {
  return Json{{"role", role}, {"content", content}};
}

Json chat(const std::string& system, const std::vector<std::pair<std::string, std::string>>& turns) {
  Json messages = Json::array();
  if (!system.empty()) messages.push_back(turn("system", system));
  for (const auto& [user, assistant] : turns) {
    messages.push_back(turn("user", user));
    if (!assistant.empty()) messages.push_back(turn("assistant", assistant));
  }
  return Json{{"messages", messages}};
}

std::string define_prompt(const std::string& w) { return "Define the word " + w + "."; }
std::string use_prompt(const std::string& w) { return "Use the word " + w + " in a sentence."; }
std::string capital_answer(const chats::Country& c) {
  return "The capital of " + c.name + " is " + c.capital + ".";
}

struct Keyed {
  std::uint64_t key;
  Json record;
};

// Fisher-Yates driven by splitmix64: std::shuffle's result differs between standard libraries.
void shuffle(std::vector<Json>& v, std::uint64_t seed) {
  for (std::size_t i = v.size(); i > 1; --i) {
    seed = chats::splitmix64(seed);
    std::swap(v[i - 1], v[seed % i]);
  }
}

void write_lines(const std::string& path, const std::vector<Json>& records) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot create");
  for (const auto& r : records)
    out << r.dump(-1, ' ', false, Json::error_handler_t::strict) << '\n';
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

int run(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: make_chats WORDNET_DIR DICT_FILE RIDDLES_FILE COUNTRIES_FILE OUT_DIR\n";
    return 2;
  }
  const std::string out_dir = argv[5];
  const auto dict = chats::read_dictionary(argv[2]);
  const auto words = chats::read_wordnet(argv[1], dict);
  const auto riddles = chats::read_riddles(argv[3]);
  const auto countries = chats::read_countries(argv[4]);

  std::vector<Keyed> train_defs;
  std::vector<Json> train, val, eval;
  std::map<std::string, std::string> heldout_pos;  // held-out word -> its only part of speech
  std::map<std::string, int> pos_count;
  std::map<std::string, std::size_t> counts;
  std::map<std::string, bool> has_use;

  for (const auto& e : words) {
    const bool out = held_out(e.word);
    if (!e.senses.empty() && !e.senses[0].definition.empty()) {
      const std::string key = e.word + "/" + e.pos;
      Json r = chat(with_system(key) ? kDictionarySystem : "",
                    {{define_prompt(e.word), e.word + " (" + e.pos + "): " + e.senses[0].definition}});
      if (out) {
        val.push_back(std::move(r));
        ++counts["val define"];
        ++pos_count[e.word];
        heldout_pos[e.word] = e.pos;
      } else {
        train_defs.push_back({chats::word_hash(key, kSaltSubsample), std::move(r)});
      }
    }
    // One "use" chat per word: the first example, over its senses in order, that holds the word.
    if (has_use[e.word]) continue;
    for (const auto& s : e.senses) {
      const auto ex = std::find_if(s.examples.begin(), s.examples.end(),
                                   [&](const std::string& x) { return chats::contains_word(x, e.word); });
      if (ex == s.examples.end()) continue;
      has_use[e.word] = true;
      Json r = chat(with_system("use/" + e.word) ? kWriterSystem : "", {{use_prompt(e.word), *ex}});
      (out ? val : train).push_back(std::move(r));
      ++counts[out ? "val use" : "train use"];
      break;
    }
  }

  // Keep the definitions with the smallest hashes: a deterministic, order-free subsample.
  std::sort(train_defs.begin(), train_defs.end(),
            [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  if (train_defs.size() > kMaxTrainDefinitions) train_defs.resize(kMaxTrainDefinitions);
  for (auto& d : train_defs) train.push_back(std::move(d.record));
  counts["train define"] = train_defs.size();

  for (const auto& r : riddles) {
    std::size_t chars = 0;
    for (const auto& [q, a] : r) chars += q.size() + a.size();
    if (chars > kMaxRiddleChars) continue;
    const bool out = held_out(r.front().first);
    (out ? val : train).push_back(chat("", r));
    ++counts[out ? "val riddle" : "train riddle"];
  }

  for (const auto& c : countries) {
    const std::string answer = capital_answer(c);
    for (std::size_t k = 0; k < kCapitalRepeats; ++k) {
      train.push_back(chat("", {{"What is the capital of " + c.name + "?", answer}}));
      train.push_back(chat("", {{"Name the capital city of " + c.name + ".", answer}}));
      train.push_back(chat(kGeographySystem, {{"Which city is the capital of " + c.name + "?", answer}}));
      counts["train capital"] += 3;
    }
  }

  // Eval: held-out words with a single part of speech (so "X (pos):" is the only right head),
  // and countries asked with the first training phrasing; both picked in hash order.
  std::vector<std::pair<std::uint64_t, std::string>> pick;
  for (const auto& [w, pos] : heldout_pos)
    if (pos_count[w] == 1) pick.emplace_back(chats::word_hash(w, kSaltEval), w);
  std::sort(pick.begin(), pick.end());
  for (std::size_t i = 0; i < pick.size() && i < kMaxEvalDefinitions; ++i) {
    const auto& w = pick[i].second;
    eval.push_back(Json{{"kind", "define"},
                        {"messages", chat("", {{define_prompt(w), ""}})["messages"]},
                        {"expected", w + " (" + heldout_pos[w] + "):"},
                        {"match", "prefix"}});
  }
  std::vector<std::pair<std::uint64_t, const chats::Country*>> cpick;
  for (const auto& c : countries) cpick.emplace_back(chats::word_hash(c.name, kSaltEval), &c);
  std::sort(cpick.begin(), cpick.end());
  for (std::size_t i = 0; i < cpick.size() && i < kMaxEvalCapitals; ++i) {
    const auto& c = *cpick[i].second;
    eval.push_back(Json{{"kind", "capital"},
                        {"messages", chat("", {{"What is the capital of " + c.name + "?", ""}})["messages"]},
                        {"expected", capital_answer(c)},
                        {"match", "exact"}});
  }

  shuffle(train, kSaltShuffle);
  shuffle(val, kSaltShuffle + 1);
  write_lines(out_dir + "/train.jsonl", train);
  write_lines(out_dir + "/val.jsonl", val);
  write_lines(out_dir + "/eval.jsonl", eval);

  std::size_t eval_define = std::min(pick.size(), kMaxEvalDefinitions);
  std::cout << "train " << train.size() << " (define " << counts["train define"] << ", use "
            << counts["train use"] << ", capital " << counts["train capital"] << ", riddle "
            << counts["train riddle"] << "); val " << val.size() << " (define "
            << counts["val define"] << ", use " << counts["val use"] << ", riddle "
            << counts["val riddle"] << "); eval " << eval.size() << " (define " << eval_define
            << ", capital " << eval.size() - eval_define << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "make_chats: " << e.what() << '\n';
    return 1;
  }
}
