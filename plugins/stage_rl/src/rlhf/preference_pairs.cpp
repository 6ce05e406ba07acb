#include "rlhf/preference_pairs.hpp"

#include "grpo/task_eval.hpp"

#include <algorithm>
#include <stdexcept>

namespace nemokit::rl {
using nlohmann::json;

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string str_field(const json& task, const char* key, const std::string& where) {
  auto it = task.find(key);
  if (it == task.end() || !it->is_string()) throw std::invalid_argument(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

// Wrong answers to one task, most informative first, before the per-task cap and rotation.
std::vector<std::string> wrong_answers(const json& task, const std::string& env, const std::string& where) {
  std::vector<std::string> out;
  if (env == "multiple_choice") {
    const std::string expected = str_field(task, "expected_answer", where);
    std::vector<std::string> letters;
    if (task.contains("letters") && task["letters"].is_array()) {
      for (const json& l : task["letters"]) letters.push_back(l.get<std::string>());
    } else if (task.contains("choices") && task["choices"].is_array()) {
      for (size_t i = 0; i < task["choices"].size(); ++i) letters.push_back(std::string(1, char('A' + i)));
    } else {
      throw std::invalid_argument(where + ": \"choices\" (or \"letters\") must be an array");
    }
    for (const std::string& l : letters)
      if (l != expected) out.push_back(l);
  } else if (env == "arithmetic") {
    const std::string expected = str_field(task, "expected_answer", where);
    long long v = 0;
    try {
      size_t used = 0;
      v = std::stoll(expected, &used);
      if (used != expected.size()) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw std::invalid_argument(where + ": \"expected_answer\" \"" + expected + "\" is not an integer");
    }
    for (long long off : {1LL, -1LL, 2LL, 10LL}) out.push_back(std::to_string(v + off));
  } else if (env == "unscramble") {
    const std::string expected = str_field(task, "expected_answer", where);
    const std::string letters = str_field(task, "letters", where);
    std::string reversed(expected.rbegin(), expected.rend());
    for (const std::string& w : {letters, reversed})
      if (w != expected && std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
  }
  return out;
}

}  // namespace

std::vector<PreferencePair> preference_pairs(const std::vector<json>& tasks, int per_task, const PairChecker& check,
                                             const std::string& where) {
  std::vector<PreferencePair> pairs;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const json& task = tasks[i];
    const std::string at = where + ":" + std::to_string(i + 1);
    if (!task.contains("environment") || !task["environment"].is_string()) continue;  // mixed rewards: no single right answer
    const std::string env = task["environment"].get<std::string>();
    std::vector<std::string> wrong = wrong_answers(task, env, at);
    if (wrong.empty()) continue;
    const std::string chosen = str_field(task, "expected_answer", at);
    // Rotate by the record's hash so a capped task does not always drop the same letters.
    std::rotate(wrong.begin(), wrong.begin() + long(fnv1a(task.dump()) % wrong.size()), wrong.end());
    int taken = 0;
    for (const std::string& rejected : wrong) {
      if (taken >= per_task) break;
      if (check && !(check(task, chosen) > check(task, rejected))) continue;  // e.g. letters that spell a word
      pairs.push_back({&task, chosen, rejected, task_kind(task)});
      ++taken;
    }
  }
  return pairs;
}

}  // namespace nemokit::rl
