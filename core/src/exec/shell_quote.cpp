#include "exec/shell_quote.hpp"

#include "util/error.hpp"

namespace nemokit {

std::string sbatch_quote(std::string_view value, std::string_view key) {
  std::string out = "\"";
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f)
      throw UserError(std::string(key) + ": value holds a control character (newline, tab, ...), which an #SBATCH line cannot carry");
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string comment_safe(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

bool is_env_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace nemokit
