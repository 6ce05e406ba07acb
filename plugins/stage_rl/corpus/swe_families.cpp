// The bug families (swe_families.hpp). Arguments stay in ranges where POSIX sh arithmetic and
// the C++ reference agree (no overflow, no negative % or /).
#include "swe_families.hpp"

#include <algorithm>
#include <cstdlib>

namespace swe {
namespace {

int64_t num(const std::string& s) { return std::stoll(s); }
std::string str(int64_t v) { return std::to_string(v); }
// An integer in [lo, hi] from a hash.
int64_t pick(uint64_t h, int64_t lo, int64_t hi) { return lo + int64_t(h % uint64_t(hi - lo + 1)); }

// Two different integers in [lo, hi].
Args distinct_pair(uint64_t h, int64_t lo, int64_t hi) {
  int64_t a = pick(h, lo, hi), b = pick(h >> 20, lo, hi);
  if (a == b) b = a == hi ? lo : a + 1;
  return {str(a), str(b)};
}

const char* const kWords[] = {"alpha", "river", "stone", "maple", "cloud", "ember", "field", "quiet",
                              "north", "lemon", "tiger", "violet", "harbor", "copper", "willow", "zephyr"};

std::vector<Family> make() {
  std::vector<Family> f;
  f.push_back({"flipped_comparison", "{f} A B: prints the larger of two integers",
               {"max2", "larger", "bigger", "maximum"},
               {"{f}() {", "  if [ \"$1\" -lt \"$2\" ]; then", "    echo \"$1\"", "  else", "    echo \"$2\"", "  fi", "}"},
               1, "  if [ \"$1\" -gt \"$2\" ]; then",
               [](uint64_t h) { return distinct_pair(h, -20, 60); },
               [](const Args& a) { return str(std::max(num(a[0]), num(a[1]))); }});
  f.push_back({"flipped_comparison", "{f} A B: prints the smaller of two integers",
               {"min2", "smaller", "lesser", "minimum"},
               {"{f}() {", "  if [ \"$1\" -gt \"$2\" ]; then", "    echo \"$1\"", "  else", "    echo \"$2\"", "  fi", "}"},
               1, "  if [ \"$1\" -lt \"$2\" ]; then",
               [](uint64_t h) { return distinct_pair(h, -20, 60); },
               [](const Args& a) { return str(std::min(num(a[0]), num(a[1]))); }});
  f.push_back({"off_by_one", "{f} N: prints 1 + 2 + ... + N",
               {"sum_to", "triangle", "sum_upto", "series_sum"},
               {"{f}() {", "  s=0", "  i=1", "  while [ \"$i\" -lt \"$1\" ]; do", "    s=$((s + i))", "    i=$((i + 1))",
                "  done", "  echo \"$s\"", "}"},
               3, "  while [ \"$i\" -le \"$1\" ]; do",
               [](uint64_t h) { return Args{str(pick(h, 1, 40))}; },
               [](const Args& a) { int64_t n = num(a[0]); return str(n * (n + 1) / 2); }});
  f.push_back({"wrong_operator", "{f} N: prints twice N",
               {"double", "twice", "times_two", "doubled"},
               {"{f}() {", "  echo $(($1 + 2))", "}"},
               1, "  echo $(($1 * 2))",
               [](uint64_t h) { int64_t n = pick(h, 3, 90); return Args{str(h & 64 ? -n : n)}; },
               [](const Args& a) { return str(2 * num(a[0])); }});
  f.push_back({"wrong_operator", "{f} N: prints N squared",
               {"square", "squared", "sq"},
               {"{f}() {", "  echo $(($1 * 2))", "}"},
               1, "  echo $(($1 * $1))",
               [](uint64_t h) { return Args{str(pick(h, 3, 40))}; },
               [](const Args& a) { return str(num(a[0]) * num(a[0])); }});
  f.push_back({"wrong_operator", "{f} A B: prints A minus B",
               {"difference", "minus", "subtract", "diff2"},
               {"{f}() {", "  echo $(($1 + $2))", "}"},
               1, "  echo $(($1 - $2))",
               [](uint64_t h) { return Args{str(pick(h, 0, 80)), str(pick(h >> 16, 1, 40))}; },
               [](const Args& a) { return str(num(a[0]) - num(a[1])); }});
  f.push_back({"wrong_operator", "{f} A B: prints the mean of two non-negative integers, rounded down",
               {"average", "mean2", "midpoint"},
               {"{f}() {", "  echo $((($1 + $2) * 2))", "}"},
               1, "  echo $((($1 + $2) / 2))",
               [](uint64_t h) { return Args{str(pick(h, 1, 60)), str(pick(h >> 16, 0, 60))}; },
               [](const Args& a) { return str((num(a[0]) + num(a[1])) / 2); }});
  f.push_back({"off_by_one", "{f} N: prints N, N-1, ..., 1 on one line",
               {"countdown", "count_down", "descending"},
               {"{f}() {", "  out=\"\"", "  i=$1", "  while [ \"$i\" -ge 0 ]; do", "    out=\"$out $i\"", "    i=$((i - 1))",
                "  done", "  echo \"${out# }\"", "}"},
               3, "  while [ \"$i\" -gt 0 ]; do",
               [](uint64_t h) { return Args{str(pick(h, 1, 12))}; },
               [](const Args& a) {
                 std::string s;
                 for (int64_t i = num(a[0]); i > 0; --i) s += (s.empty() ? "" : " ") + str(i);
                 return s;
               }});
  f.push_back({"off_by_one", "{f} C N: prints the character C N times",
               {"repeat", "repeat_char", "replicate"},
               {"{f}() {", "  out=\"\"", "  i=1", "  while [ \"$i\" -lt \"$2\" ]; do", "    out=\"$out$1\"", "    i=$((i + 1))",
                "  done", "  echo \"$out\"", "}"},
               3, "  while [ \"$i\" -le \"$2\" ]; do",
               [](uint64_t h) { return Args{std::string(1, "abxyz-=+"[h % 8]), str(pick(h >> 8, 1, 9))}; },
               [](const Args& a) { return std::string(size_t(num(a[1])), a[0][0]); }});
  f.push_back({"off_by_one", "{f} N: prints N! (1 x 2 x ... x N)",
               {"factorial", "fact", "product_to"},
               {"{f}() {", "  p=1", "  i=0", "  while [ \"$i\" -le \"$1\" ]; do", "    p=$((p * i))", "    i=$((i + 1))",
                "  done", "  echo \"$p\"", "}"},
               2, "  i=1",
               [](uint64_t h) { return Args{str(pick(h, 1, 10))}; },
               [](const Args& a) { int64_t p = 1; for (int64_t i = 2; i <= num(a[0]); ++i) p *= i; return str(p); }});
  f.push_back({"flipped_comparison", "{f} N: prints the absolute value of N",
               {"abs", "absolute", "magnitude"},
               {"{f}() {", "  if [ \"$1\" -gt 0 ]; then", "    echo $((0 - $1))", "  else", "    echo \"$1\"", "  fi", "}"},
               1, "  if [ \"$1\" -lt 0 ]; then",
               [](uint64_t h) { int64_t n = pick(h, 1, 99); return Args{str(h & 128 ? -n : n)}; },
               [](const Args& a) { return str(std::abs(num(a[0]))); }});
  f.push_back({"wrong_constant", "{f} N: prints yes when N (>= 0) is even, else no",
               {"is_even", "even", "check_even"},
               {"{f}() {", "  if [ $(($1 % 2)) -eq 1 ]; then", "    echo yes", "  else", "    echo no", "  fi", "}"},
               1, "  if [ $(($1 % 2)) -eq 0 ]; then",
               [](uint64_t h) { return Args{str(pick(h, 0, 99))}; },
               [](const Args& a) { return std::string(num(a[0]) % 2 == 0 ? "yes" : "no"); }});
  f.push_back({"flipped_comparison", "{f} X LO HI: prints X limited to the range [LO, HI]",
               {"clamp", "limit", "bound"},
               {"{f}() {", "  if [ \"$1\" -lt \"$2\" ]; then", "    echo \"$2\"", "  elif [ \"$1\" -lt \"$3\" ]; then",
                "    echo \"$3\"", "  else", "    echo \"$1\"", "  fi", "}"},
               3, "  elif [ \"$1\" -gt \"$3\" ]; then",
               [](uint64_t h) {
                 int64_t lo = pick(h, -10, 10), hi = lo + pick(h >> 8, 3, 20);
                 return Args{str(pick(h >> 16, lo - 5, hi + 5)), str(lo), str(hi)};
               },
               [](const Args& a) { return str(std::clamp(num(a[0]), num(a[1]), num(a[2]))); }});
  f.push_back({"wrong_expansion", "{f} TEXT: prints the first word of TEXT",
               {"first_word", "head_word", "leading_word"},
               {"{f}() {", "  echo \"${1##* }\"", "}"},
               1, "  echo \"${1%% *}\"",
               [](uint64_t h) {
                 std::string s;
                 const int n = int(pick(h, 2, 4));
                 for (int i = 0; i < n; ++i, h = h * 6364136223846793005ull + 1442695040888963407ull)
                   s += (i ? " " : "") + std::string(kWords[(h >> 33) % 16]);
                 return Args{s};
               },
               [](const Args& a) { return a[0].substr(0, a[0].find(' ')); }});
  f.push_back({"off_by_one", "{f} B E: prints B to the power E (E >= 0)",
               {"power", "pow", "raise"},
               {"{f}() {", "  r=1", "  i=0", "  while [ \"$i\" -le \"$2\" ]; do", "    r=$((r * $1))", "    i=$((i + 1))",
                "  done", "  echo \"$r\"", "}"},
               3, "  while [ \"$i\" -lt \"$2\" ]; do",
               [](uint64_t h) { return Args{str(pick(h, 2, 6)), str(pick(h >> 8, 0, 6))}; },
               [](const Args& a) { int64_t r = 1; for (int64_t i = 0; i < num(a[1]); ++i) r *= num(a[0]); return str(r); }});
  return f;
}

}  // namespace

const std::vector<Family>& families() {
  static const std::vector<Family> all = make();
  return all;
}

}  // namespace swe
