// make_tasks: verifiable RL tasks from Debian's packages, one JSONL file per environment.
// Usage: make_tasks WORDNET_DIR DICT_FILE COUNTRIES_FILE OUT_DIR
// Writes OUT_DIR/{arithmetic,unscramble,definitions,capitals}.jsonl, records of the form
//   {"prompt": [{"role": "user", "content": ...}], "expected_answer": ..., "environment": ...,
//    "task": <the file's name>, <fields the environment reads>}
// (rl_tasks.cpp generates them), and prints a one-line summary. Environments
// (plugins/stage_rl/src/env): arithmetic, unscramble, and multiple_choice for the definitions and
// the capitals (four lettered choices, "expected_answer" the letter). Every choice (which words,
// distractors, letter orders) is a hash of the text itself, so the same packages always give the
// same bytes.
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat_sources.hpp"
#include "rl_tasks.hpp"

namespace {

using rltasks::Json;

void write_lines(const std::string& path, const std::vector<Json>& records) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot create");
  for (const auto& r : records) out << rltasks::line(r) << '\n';
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
}

int run(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: make_tasks WORDNET_DIR DICT_FILE COUNTRIES_FILE OUT_DIR\n";
    return 2;
  }
  const std::string out_dir = argv[4];
  const auto dict = chats::read_dictionary(argv[2]);
  const auto words = chats::read_wordnet(argv[1], dict);
  const auto countries = chats::read_countries(argv[3]);
  const std::vector<std::pair<const char*, std::vector<Json>>> files = {
      {"arithmetic", rltasks::arithmetic()}, {"unscramble", rltasks::unscramble(words)},
      {"definitions", rltasks::definitions(words)}, {"capitals", rltasks::capitals(countries)}};
  std::string summary;
  for (const auto& [name, records] : files) {
    write_lines(out_dir + "/" + name + ".jsonl", records);
    summary += (summary.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(records.size());
  }
  std::cout << summary << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "make_tasks: " << e.what() << '\n';
    return 1;
  }
}
