#include "util/memory_size.hpp"

#include <cctype>
#include <cstdlib>

#include "util/error.hpp"

namespace nemokit {

long double parse_memory_size(const std::string& text, const std::string& key) {
  auto bad = [&] {
    return UserError(key + " = \"" + text + "\": not a memory size (a number with K, M, G or T after it, as Slurm's --mem takes: \"64G\")");
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) throw bad();
  char* end = nullptr;
  const std::string number = text.substr(0, i);
  const long double value = std::strtold(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !(value > 0)) throw bad();
  std::string unit = text.substr(i);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  else if (unit.size() == 2 && unit.back() == 'B') unit.resize(1);
  long double scale = 1024.0L * 1024.0L;  // Slurm's default unit: megabytes
  if (unit == "K") scale = 1024.0L;
  else if (unit == "M" || unit.empty()) scale = 1024.0L * 1024.0L;
  else if (unit == "G") scale = 1024.0L * 1024.0L * 1024.0L;
  else if (unit == "T") scale = 1024.0L * 1024.0L * 1024.0L * 1024.0L;
  else throw bad();
  return value * scale;
}

}  // namespace nemokit
