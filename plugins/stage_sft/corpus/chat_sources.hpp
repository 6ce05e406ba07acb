// Readers for the Debian data files the SFT chats are derived from. Each reader throws
// std::runtime_error naming the file and line of anything it cannot parse.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace chats {

// Deterministic hashes: the held-out split and the subsampling depend on these alone, so the same
// packages give the same files on every machine.
std::uint64_t fnv1a64(const std::string& s);
std::uint64_t splitmix64(std::uint64_t x);
inline std::uint64_t word_hash(const std::string& s, std::uint64_t salt = 0) {
  return splitmix64(fnv1a64(s) ^ salt);
}

// Lowercase, letters-only entries of a word list such as /usr/share/dict/american-english.
std::unordered_set<std::string> read_dictionary(const std::string& path);

struct WordSense {
  std::string definition;             // the gloss before its first quoted example
  std::vector<std::string> examples;  // the gloss's quoted examples, in order
};

// One lemma in one part of speech, with its senses in WordNet's order (most frequent first).
struct WordEntry {
  std::string word;
  std::string pos;  // "noun", "verb", "adjective", "adverb"
  std::vector<WordSense> senses;
};

// WordNet's index.{noun,verb,adj,adv} + data.* from `dir`, keeping lemmas that are in `dict`.
// Entries come out grouped by part of speech (noun, verb, adjective, adverb), words sorted.
std::vector<WordEntry> read_wordnet(const std::string& dir,
                                    const std::unordered_set<std::string>& dict);

// A riddle is one fortune item's Q:/A: pairs, in order (an item may hold several).
using Riddle = std::vector<std::pair<std::string, std::string>>;
std::vector<Riddle> read_riddles(const std::string& path);

struct Country {
  std::string name;
  std::string capital;
};
// miscfiles' countries list, uncompressed ("UN:A2:A3:name:capital" lines). Names that only read
// well with a comma or a parenthesis, and entries without a single official capital, are left out.
std::vector<Country> read_countries(const std::string& path);

// True when `text` holds `word` delimited by non-letters (ASCII case-insensitive).
bool contains_word(const std::string& text, const std::string& word);

}  // namespace chats
