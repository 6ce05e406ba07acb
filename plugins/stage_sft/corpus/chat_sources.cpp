#include "chat_sources.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace chats {
namespace {

[[noreturn]] void fail(const std::string& path, std::size_t line, const std::string& what) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + what);
}

std::ifstream open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return in;
}

// The JSON writer refuses invalid UTF-8; checking here lets the error name the source line.
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t extra = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
                            : (c & 0xf8) == 0xf0 ? 3 : 4;
    if (extra == 4 || c == 0xc0 || c == 0xc1 || i + extra >= s.size()) return false;
    for (std::size_t k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Runs of blanks become one space: fortunes align their text with tabs and double spaces.
std::string squeeze(const std::string& s) {
  std::string out;
  bool blank = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      blank = true;
    } else {
      if (blank && !out.empty()) out += ' ';
      blank = false;
      out += c;
    }
  }
  return out;
}

bool lowercase_word(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

// "definition; \"example one\"; \"example two\"" -> the definition and the quoted examples.
WordSense split_gloss(const std::string& gloss) {
  WordSense sense;
  const auto quote = gloss.find('"');
  std::string def = trim(gloss.substr(0, quote));
  while (!def.empty() && (def.back() == ';' || def.back() == ' ')) def.pop_back();
  sense.definition = def;
  for (auto open = quote; open != std::string::npos;) {
    const auto close = gloss.find('"', open + 1);
    if (close == std::string::npos) break;  // an unbalanced quote: keep what was complete
    std::string ex = trim(gloss.substr(open + 1, close - open - 1));
    if (!ex.empty()) sense.examples.push_back(ex);
    open = gloss.find('"', close + 1);
  }
  return sense;
}

// data.<pos>: "offset lex_filenum ss_type w_cnt word lex_id ... | gloss". Only the gloss is needed.
std::unordered_map<std::uint64_t, std::string> read_glosses(const std::string& path) {
  auto in = open(path);
  std::unordered_map<std::uint64_t, std::string> glosses;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == ' ') continue;  // the licence header is indented
    if (!valid_utf8(line)) fail(path, n, "invalid UTF-8");
    const auto bar = line.find(" | ");
    if (bar == std::string::npos) fail(path, n, "no ' | ' before the gloss");
    std::size_t used = 0;
    std::uint64_t offset = 0;
    try {
      offset = std::stoull(line, &used);
    } catch (const std::exception&) {
      fail(path, n, "expected a synset offset");
    }
    if (used != 8) fail(path, n, "expected an 8-digit synset offset");
    glosses.emplace(offset, trim(line.substr(bar + 3)));
  }
  return glosses;
}

}  // namespace

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool contains_word(const std::string& text, const std::string& word) {
  auto letter = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  if (word.empty() || text.size() < word.size()) return false;
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (i > 0 && letter(text[i - 1])) continue;
    const std::size_t end = i + word.size();
    if (end < text.size() && letter(text[end])) continue;
    bool same = true;
    for (std::size_t k = 0; k < word.size() && same; ++k) same = lower(text[i + k]) == word[k];
    if (same) return true;
  }
  return false;
}

std::unordered_set<std::string> read_dictionary(const std::string& path) {
  auto in = open(path);
  std::unordered_set<std::string> words;
  std::string line;
  while (std::getline(in, line))
    if (lowercase_word(line)) words.insert(line);
  if (words.empty()) throw std::runtime_error(path + ": no lowercase words");
  return words;
}

std::vector<WordEntry> read_wordnet(const std::string& dir,
                                    const std::unordered_set<std::string>& dict) {
  const std::pair<const char*, const char*> parts[] = {
      {"noun", "noun"}, {"verb", "verb"}, {"adj", "adjective"}, {"adv", "adverb"}};
  std::vector<WordEntry> entries;
  for (const auto& [file, pos] : parts) {
    const auto glosses = read_glosses(dir + "/data." + file);
    const std::string index = dir + "/index." + file;
    auto in = open(index);
    std::string line;
    // index.<pos>: "lemma pos synset_cnt p_cnt [ptr]*p_cnt sense_cnt tagsense_cnt [offset]*synset_cnt",
    // offsets ordered by sense frequency. Lemmas are already sorted.
    for (std::size_t n = 1; std::getline(in, line); ++n) {
      if (line.empty() || line[0] == ' ') continue;
      std::istringstream fields(line);
      std::string lemma, p;
      std::size_t synsets = 0, pointers = 0;
      if (!(fields >> lemma >> p >> synsets >> pointers)) fail(index, n, "malformed index line");
      if (lemma.size() < 2 || !lowercase_word(lemma) || !dict.count(lemma)) continue;
      std::string skip;
      for (std::size_t k = 0; k < pointers + 2; ++k)
        if (!(fields >> skip)) fail(index, n, "index line ends inside its pointer list");
      WordEntry entry{lemma, pos, {}};
      for (std::size_t k = 0; k < synsets; ++k) {
        std::uint64_t offset = 0;
        if (!(fields >> offset)) fail(index, n, "fewer synset offsets than synset_cnt");
        const auto g = glosses.find(offset);
        if (g == glosses.end()) fail(index, n, "synset " + std::to_string(offset) + " not in data." + file);
        entry.senses.push_back(split_gloss(g->second));
      }
      entries.push_back(std::move(entry));
    }
  }
  if (entries.empty()) throw std::runtime_error(dir + ": no WordNet lemma is in the dictionary");
  return entries;
}

std::vector<Riddle> read_riddles(const std::string& path) {
  auto in = open(path);
  std::vector<Riddle> riddles;
  Riddle item;
  std::string q, a;
  enum { kNone, kQuestion, kAnswer } in_part = kNone;
  auto close_pair = [&] {
    if (!q.empty() && !a.empty()) item.emplace_back(squeeze(q), squeeze(a));
    q.clear();
    a.clear();
    in_part = kNone;
  };
  auto close_item = [&] {
    close_pair();
    if (!item.empty()) riddles.push_back(std::move(item));
    item.clear();
  };
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!valid_utf8(line)) fail(path, n, "invalid UTF-8");
    const std::string t = trim(line);
    if (line == "%") {
      close_item();
    } else if (line.rfind("Q:", 0) == 0) {
      close_pair();  // a question after an answer starts the item's next pair
      q = line.substr(2);
      in_part = kQuestion;
    } else if (line.rfind("A:", 0) == 0) {
      // An answer before any question is a "questions for the great answers" joke: not a riddle.
      if (in_part == kQuestion) {
        a = line.substr(2);
        in_part = kAnswer;
      } else {
        close_pair();
      }
    } else if (t.empty()) {
      if (in_part == kAnswer) close_pair();
    } else if (t.rfind("--", 0) == 0) {
      if (in_part == kAnswer) close_pair();  // an attribution line, not part of the answer
    } else if (in_part == kQuestion) {
      q += " " + line;
    } else if (in_part == kAnswer) {
      a += " " + line;
    }
  }
  close_item();
  if (riddles.empty()) throw std::runtime_error(path + ": no Q:/A: riddles found");
  return riddles;
}

std::vector<Country> read_countries(const std::string& path) {
  auto in = open(path);
  std::vector<Country> countries;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    if (!valid_utf8(line)) fail(path, n, "invalid UTF-8");
    std::vector<std::string> f;
    std::size_t start = 0;
    for (int k = 0; k < 4; ++k) {
      const auto colon = line.find(':', start);
      if (colon == std::string::npos) fail(path, n, "expected 5 ':'-separated fields");
      f.push_back(line.substr(start, colon - start));
      start = colon + 1;
    }
    const std::string name = trim(f[3]);
    std::string capital = trim(line.substr(start));
    if (name.empty()) fail(path, n, "empty country name");
    if (capital.empty() || name.find_first_of(",(") != std::string::npos) continue;
    // "Amsterdam (official), The Hague (seat of government)": keep the one marked official
    // (the list spells it "offcial" once); with no official one the question has no single answer.
    if (capital.find('(') != std::string::npos) {
      std::string official;
      std::istringstream parts(capital);
      for (std::string part; std::getline(parts, part, ',');) {
        const auto paren = part.find('(');
        if (paren != std::string::npos && part.compare(paren, 4, "(off") == 0)
          official = trim(part.substr(0, paren));
      }
      if (official.empty()) continue;
      capital = official;
    }
    countries.push_back({name, capital});
  }
  if (countries.empty()) throw std::runtime_error(path + ": no countries with capitals");
  return countries;
}

}  // namespace chats
