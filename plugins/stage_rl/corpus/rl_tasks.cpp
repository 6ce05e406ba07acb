#include "rl_tasks.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace rltasks {
namespace {

// The tiny model answers in a few tokens: keep words short and numbers small.
constexpr int kMaxAddend = 20, kMaxFactor = 12;
// The SFT drills go past those ranges (arithmetic_drills): two-digit sums and differences, and
// products with one factor past the times table.
constexpr int kMaxDrillAddend = 99, kMaxDrillFactor = 20;
constexpr std::size_t kMinWordLength = 3, kMaxWordLength = 6;
constexpr std::size_t kMaxUnscramble = 1500, kMaxDefinitions = 1500;
// A definition longer than this would dominate a short prompt.
constexpr std::size_t kMaxDefinitionChars = 90;
constexpr std::uint64_t kSaltPick = 0x7a5c0001, kSaltLetters = 0x7a5c0002, kSaltChoice = 0x7a5c0003;

Json record(const std::string& question, const std::string& expected, const char* environment, const char* task) {
  Json r;
  r["prompt"] = Json::array({Json{{"role", "user"}, {"content", question}}});
  r["expected_answer"] = expected;
  r["environment"] = environment;
  r["task"] = task;
  return r;
}

// A four-way multiple-choice record: the answer goes to a hash-chosen letter.
Json choice_record(const std::string& question, std::vector<std::string> choices, std::uint64_t key, const char* task) {
  const std::size_t answer = key % choices.size();
  std::swap(choices[0], choices[answer]);
  std::string q = question;
  for (std::size_t i = 0; i < choices.size(); ++i) q += std::string("\n") + char('A' + i) + ") " + choices[i];
  q += "\nAnswer with the letter only.";
  Json r = record(q, std::string(1, char('A' + answer)), "multiple_choice", task);
  r["choices"] = choices;
  return r;
}

// Three distractors from `pool` (none equal to the answer, chosen by hashes from `seed`), after it.
std::vector<std::string> with_distractors(const std::string& answer, const std::vector<std::string>& pool, std::uint64_t seed) {
  std::vector<std::string> choices = {answer};
  for (int guard = 0; choices.size() < 4 && guard < 64; ++guard) {
    seed = chats::splitmix64(seed);
    const std::string& w = pool[seed % pool.size()];
    if (std::find(choices.begin(), choices.end(), w) == choices.end()) choices.push_back(w);
  }
  return choices;
}

Json arithmetic_record(int a, char op, int b, int value) {
  std::string expr = std::to_string(a) + " " + op + " " + std::to_string(b);
  Json r = record("What is " + expr + "? Answer with the number only.", std::to_string(value), "arithmetic", "arithmetic");
  r["expression"] = expr;
  return r;
}

}  // namespace

std::vector<Json> arithmetic() {
  std::vector<Json> out;
  auto add = [&](int a, char op, int b, int value) { out.push_back(arithmetic_record(a, op, b, value)); };
  for (int a = 0; a <= kMaxAddend; ++a)
    for (int b = 0; b <= kMaxAddend; ++b) {
      add(a, '+', b, a + b);
      if (a >= b) add(a, '-', b, a - b);  // non-negative results only
    }
  for (int a = 0; a <= kMaxFactor; ++a)
    for (int b = 0; b <= kMaxFactor; ++b) add(a, '*', b, a * b);
  return out;
}

std::vector<Json> arithmetic_drills() {
  std::vector<Json> out;
  auto add = [&](int a, char op, int b, int value) { out.push_back(arithmetic_record(a, op, b, value)); };
  for (int a = 0; a <= kMaxDrillAddend; ++a)
    for (int b = 0; b <= kMaxDrillAddend; ++b) {
      if (a <= kMaxAddend && b <= kMaxAddend) continue;  // arithmetic()'s own range
      add(a, '+', b, a + b);
      if (a >= b) add(a, '-', b, a - b);
    }
  for (int a = 0; a <= kMaxDrillFactor; ++a)
    for (int b = 0; b <= kMaxDrillFactor; ++b)
      if ((a <= kMaxFactor) != (b <= kMaxFactor)) add(a, '*', b, a * b);
  return out;
}

std::string scramble(const std::string& w) {
  std::string s = w;
  std::uint64_t h = chats::word_hash(w, kSaltLetters);
  for (int attempt = 0; attempt < 8 && s == w; ++attempt)
    for (std::size_t i = s.size(); i > 1; --i) {
      h = chats::splitmix64(h);
      std::swap(s[i - 1], s[h % i]);
    }
  return s;
}

std::string unscramble_prompt(const std::string& letters) {
  return "Unscramble the letters \"" + letters + "\" into an English word. Answer with the word only.";
}

std::vector<Json> unscramble(const std::vector<chats::WordEntry>& words) {
  std::vector<std::pair<std::uint64_t, std::string>> pick;
  std::map<std::string, bool> seen;
  for (const auto& e : words) {
    if (e.word.size() < kMinWordLength || e.word.size() > kMaxWordLength || seen[e.word]) continue;
    seen[e.word] = true;
    std::string s = scramble(e.word);
    if (s != e.word) pick.emplace_back(chats::word_hash(e.word, kSaltPick), e.word);
  }
  std::sort(pick.begin(), pick.end());
  if (pick.size() > kMaxUnscramble) pick.resize(kMaxUnscramble);
  std::vector<Json> out;
  for (const auto& [_, w] : pick) {
    const std::string letters = scramble(w);
    Json r = record(unscramble_prompt(letters), w, "unscramble", "unscramble");
    r["letters"] = letters;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Json> definitions(const std::vector<chats::WordEntry>& words) {
  // Candidates: single-word lemmas whose first definition is short and does not name the word.
  std::map<std::string, std::vector<std::string>> by_pos;
  std::vector<std::pair<std::uint64_t, const chats::WordEntry*>> pick;
  for (const auto& e : words) {
    if (e.senses.empty() || e.word.size() > 10) continue;
    const std::string& d = e.senses[0].definition;
    if (d.empty() || d.size() > kMaxDefinitionChars || chats::contains_word(d, e.word)) continue;
    by_pos[e.pos].push_back(e.word);
    pick.emplace_back(chats::word_hash(e.word + "/" + e.pos, kSaltPick), &e);
  }
  std::sort(pick.begin(), pick.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Json> out;
  for (const auto& [h, e] : pick) {
    if (out.size() >= kMaxDefinitions) break;
    // distractors of the same part of speech
    std::vector<std::string> choices = with_distractors(e->word, by_pos[e->pos], h);
    if (choices.size() < 4) continue;
    Json r = choice_record("Which word means \"" + e->senses[0].definition + "\"?", choices,
                           chats::word_hash(e->word, kSaltChoice), "definitions");
    r["word"] = e->word;
    r["definition"] = e->senses[0].definition;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Json> capitals(const std::vector<chats::Country>& countries) {
  std::vector<std::string> pool;
  for (const auto& c : countries) pool.push_back(c.capital);
  std::vector<Json> out;
  for (const auto& c : countries)
    for (const std::string& q : {"What is the capital of " + c.name + "?", "Which city is the capital of " + c.name + "?"}) {
      const std::uint64_t h = chats::word_hash(q, kSaltPick);
      std::vector<std::string> choices = with_distractors(c.capital, pool, h);
      if (choices.size() < 4) continue;
      Json r = choice_record(q, choices, chats::word_hash(q, kSaltChoice), "capitals");
      r["country"] = c.name;
      r["capital"] = c.capital;
      out.push_back(std::move(r));
    }
  return out;
}

std::string line(const Json& record) { return record.dump(-1, ' ', false, Json::error_handler_t::strict); }

int prep_split(const std::string& line, std::uint64_t seed, const std::array<std::int64_t, 3>& weights) {
  const std::int64_t total = weights[0] + weights[1] + weights[2];
  if (total <= 0) throw std::invalid_argument("prep_split: the split weights sum to zero");
  std::uint64_t h = 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull);
  for (unsigned char ch : line) h = (h ^ ch) * 0x100000001b3ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  const auto bucket = std::int64_t(h % std::uint64_t(total));
  return bucket < weights[0] ? 0 : bucket < weights[0] + weights[1] ? 1 : 2;
}

}  // namespace rltasks
