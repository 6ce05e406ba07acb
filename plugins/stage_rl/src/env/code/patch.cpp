#include "env/code/patch.hpp"

#include <algorithm>
#include <cstdlib>

namespace nemokit::rl::code {
namespace {

constexpr size_t kMaxFilesInPatch = 1000;

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) out += (static_cast<unsigned char>(s[i]) < 0x20) ? '?' : s[i];
  return s.size() > 80 ? out + "..." : out;
}

// The path of a ---/+++ header line: up to a tab (a timestamp follows), "" for /dev/null.
std::string header_path(std::string_view line) {
  std::string_view p = line.substr(4);
  if (size_t tab = p.find('\t'); tab != std::string_view::npos) p = p.substr(0, tab);
  while (!p.empty() && (p.back() == ' ' || p.back() == '\r')) p.remove_suffix(1);
  if (!p.empty() && p.front() == '"') throw PatchError("quoted path " + shown(p) + " is not supported");
  if (p == "/dev/null") return "";
  if (p.empty()) throw PatchError("empty path in \"" + shown(line) + "\"");
  return std::string(p);
}

size_t parse_number(std::string_view s, std::string_view line) {
  if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw PatchError("bad hunk header \"" + shown(line) + "\"");
  return std::strtoul(std::string(s).c_str(), nullptr, 10);
}

// "@@ -a,b +c,d @@ ..." (",b" and ",d" default to 1).
Hunk parse_hunk_header(std::string_view line) {
  Hunk h;
  if (!starts(line, "@@ -")) throw PatchError("bad hunk header \"" + shown(line) + "\"");
  size_t end = line.find(" @@", 4);
  size_t plus = line.find(" +", 4);
  if (end == std::string_view::npos || plus == std::string_view::npos || plus > end)
    throw PatchError("bad hunk header \"" + shown(line) + "\"");
  auto range = [&](std::string_view r, size_t& start, size_t& count) {
    size_t comma = r.find(',');
    start = parse_number(r.substr(0, comma), line);
    count = comma == std::string_view::npos ? 1 : parse_number(r.substr(comma + 1), line);
  };
  range(line.substr(4, plus - 4), h.old_start, h.old_count);
  range(line.substr(plus + 2, end - plus - 2), h.new_start, h.new_count);
  return h;
}

// Both a/ and b/ (or /dev/null) prefixes: git style, strip them.
void strip_git_prefixes(FilePatch& fp) {
  bool old_ok = fp.old_path.empty() || starts(fp.old_path, "a/");
  bool new_ok = fp.new_path.empty() || starts(fp.new_path, "b/");
  if (!old_ok || !new_ok) return;
  if (!fp.old_path.empty()) fp.old_path = fp.old_path.substr(2);
  if (!fp.new_path.empty()) fp.new_path = fp.new_path.substr(2);
}

struct Text {
  std::vector<std::string> lines;
  bool ends_without_newline = false;
};

Text to_text(const std::string& content) {
  Text t;
  for (auto l : split_lines(content)) t.lines.emplace_back(l);
  t.ends_without_newline = !content.empty() && content.back() != '\n';
  return t;
}

std::string from_text(const Text& t) {
  std::string out;
  for (size_t i = 0; i < t.lines.size(); ++i) {
    out += t.lines[i];
    if (i + 1 < t.lines.size() || !t.ends_without_newline) out += '\n';
  }
  return out;
}

bool matches_at(const Text& t, const std::vector<std::string>& old, size_t at) {
  if (at + old.size() > t.lines.size()) return false;
  for (size_t i = 0; i < old.size(); ++i)
    if (t.lines[at + i] != old[i]) return false;
  return true;
}

std::string apply_hunks(const std::string& path, const std::string& content, const std::vector<Hunk>& hunks) {
  Text t = to_text(content);
  size_t floor = 0;  // hunks apply in order, never overlapping
  long long shift = 0;
  for (size_t k = 0; k < hunks.size(); ++k) {
    const Hunk& h = hunks[k];
    long long want = static_cast<long long>(h.old_start) - (h.old_count ? 1 : 0) + shift;
    size_t n = t.lines.size();
    std::optional<size_t> at;
    // The stated line first, then ever farther away in both directions.
    for (size_t d = 0; !at && d <= n + 1; ++d) {
      for (long long cand : {want - static_cast<long long>(d), want + static_cast<long long>(d)}) {
        if (cand < static_cast<long long>(floor) || cand > static_cast<long long>(n)) continue;
        if (matches_at(t, h.old_lines, static_cast<size_t>(cand))) {
          at = static_cast<size_t>(cand);
          break;
        }
      }
    }
    if (!at) throw PatchError(path + ": hunk " + std::to_string(k + 1) + " (line " + std::to_string(h.old_start) +
                              ") does not match the file");
    bool at_end = *at + h.old_lines.size() == t.lines.size();
    t.lines.erase(t.lines.begin() + static_cast<long>(*at), t.lines.begin() + static_cast<long>(*at + h.old_lines.size()));
    t.lines.insert(t.lines.begin() + static_cast<long>(*at), h.new_lines.begin(), h.new_lines.end());
    if (at_end) t.ends_without_newline = h.new_ends_without_newline;
    floor = *at + h.new_lines.size();
    shift = static_cast<long long>(*at) - (static_cast<long long>(h.old_start) - (h.old_count ? 1 : 0)) +
            static_cast<long long>(h.new_lines.size()) - static_cast<long long>(h.old_lines.size());
  }
  return from_text(t);
}

// Refuses a path that goes through, or lands on, a symlink or a file used as a folder.
void check_no_links(const Files& files, const std::string& path) {
  for (size_t slash = path.find('/'); ; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    auto it = files.find(prefix);
    if (it != files.end()) {
      if (!it->second.symlink.empty())
        throw PatchError(path + ": goes through the symlink " + prefix + " (patches may not follow symlinks)");
      if (slash != std::string::npos) throw PatchError(path + ": " + prefix + " is a file, not a folder");
    }
    if (slash == std::string::npos) break;
  }
}

}  // namespace

std::string clean_repo_path(std::string_view path) {
  if (path.empty()) throw PatchError("empty path");
  if (path.front() == '/') throw PatchError(shown(path) + ": absolute paths are refused (paths are relative to the repository)");
  if (path.size() > 4096) throw PatchError("path of " + std::to_string(path.size()) + " bytes is too long");
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") throw PatchError(shown(path) + ": \"..\" would leave the repository");
    for (char c : part)
      if (static_cast<unsigned char>(c) < 0x20) throw PatchError(shown(path) + ": control characters in a path");
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + std::string(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (out.empty()) throw PatchError(shown(path) + ": names the repository itself, not a file");
  return out;
}

std::optional<std::string> extract_patch(std::string_view response) {
  auto lines = split_lines(response);
  // Fenced blocks: [first content line, end line).
  std::optional<std::pair<size_t, size_t>> tagged, any_diff;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (!starts(l, "```")) continue;
    std::string_view tag = l.substr(3);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\r')) tag.remove_suffix(1);
    size_t j = i + 1;
    while (j < lines.size() && !starts(lines[j], "```")) ++j;
    bool has_headers = false;
    for (size_t k = i + 1; k + 1 < j; ++k)
      if (starts(lines[k], "--- ") && starts(lines[k + 1], "+++ ")) has_headers = true;
    if (tag == "diff" || tag == "patch") tagged = std::pair{i + 1, j};
    else if (has_headers) any_diff = std::pair{i + 1, j};
    i = j;
  }
  auto join = [&](size_t b, size_t e) {
    std::string out;
    for (size_t k = b; k < e; ++k) out.append(lines[k]).push_back('\n');
    return out;
  };
  if (tagged) return join(tagged->first, tagged->second);
  if (any_diff) return join(any_diff->first, any_diff->second);
  for (size_t i = 0; i < lines.size(); ++i)
    if (starts(lines[i], "diff --git ") || (starts(lines[i], "--- ") && i + 1 < lines.size() && starts(lines[i + 1], "+++ ")))
      return join(i, lines.size());
  return std::nullopt;
}

std::vector<FilePatch> parse_patch(std::string_view text) {
  auto lines = split_lines(text);
  std::vector<FilePatch> out;
  FilePatch* cur = nullptr;
  bool git_header_open = false;  // after "diff --git", before its ---/+++ or next header
  std::optional<std::string> rename_from, rename_to;
  std::optional<bool> pending_mode;
  bool pending_delete = false, pending_new = false;
  auto start_git = [&] {
    if (git_header_open && (rename_from || rename_to) && out.size() < kMaxFilesInPatch) {
      // A pure rename (no ---/+++): its own file patch.
      if (!rename_from || !rename_to) throw PatchError("\"rename from\" without \"rename to\"");
      out.push_back({*rename_from, *rename_to, pending_mode, {}});
    } else if (git_header_open && pending_mode && !pending_new && !pending_delete) {
      throw PatchError("mode changes without content changes are not supported");
    }
    rename_from.reset();
    rename_to.reset();
    pending_mode.reset();
    pending_delete = pending_new = false;
  };
  auto mode_of = [&](std::string_view line, size_t skip) {
    std::string m(line.substr(skip));
    while (!m.empty() && (m.back() == '\r' || m.back() == ' ')) m.pop_back();
    if (m == "120000") throw PatchError("symlinks are refused (mode 120000)");
    if (m == "160000") throw PatchError("submodules are refused (mode 160000)");
    if (m != "100644" && m != "100755") throw PatchError("unknown file mode " + shown(m));
    return m == "100755";
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (starts(l, "diff --git ")) {
      start_git();
      git_header_open = true;
      cur = nullptr;
      continue;
    }
    if (starts(l, "GIT binary patch") || (starts(l, "Binary files ") && l.find(" differ") != std::string_view::npos))
      throw PatchError("binary patches are refused");
    if (git_header_open) {
      if (starts(l, "new file mode ")) { pending_new = true; pending_mode = mode_of(l, 14); continue; }
      if (starts(l, "deleted file mode ")) { pending_delete = true; mode_of(l, 18); continue; }
      if (starts(l, "old mode ")) { mode_of(l, 9); continue; }
      if (starts(l, "new mode ")) { pending_mode = mode_of(l, 9); continue; }
      if (starts(l, "rename from ")) { rename_from = std::string(l.substr(12)); continue; }
      if (starts(l, "rename to ")) { rename_to = std::string(l.substr(10)); continue; }
      if (starts(l, "copy from ") || starts(l, "copy to ")) throw PatchError("copies are not supported");
    }
    if (starts(l, "--- ") && i + 1 < lines.size() && starts(lines[i + 1], "+++ ")) {
      if (out.size() >= kMaxFilesInPatch) throw PatchError("more than " + std::to_string(kMaxFilesInPatch) + " files in the patch");
      FilePatch fp;
      fp.old_path = header_path(l);
      fp.new_path = header_path(lines[i + 1]);
      if (fp.old_path.empty() && fp.new_path.empty()) throw PatchError("both sides of a file patch are /dev/null");
      strip_git_prefixes(fp);
      fp.new_executable = pending_mode;
      out.push_back(std::move(fp));
      cur = &out.back();
      git_header_open = false;
      rename_from.reset();
      rename_to.reset();
      pending_mode.reset();
      pending_delete = pending_new = false;
      ++i;
      continue;
    }
    if (starts(l, "@@ ")) {
      if (!cur) throw PatchError("hunk \"" + shown(l) + "\" before any ---/+++ file header");
      Hunk h = parse_hunk_header(l);
      size_t old_left = h.old_count, new_left = h.new_count;
      char last = 0;
      // "\ No newline at end of file" marks the line before it: old side, new side or both.
      auto no_newline = [&] {
        if (last == '-' || last == ' ') h.old_ends_without_newline = true;
        if (last == '+' || last == ' ') h.new_ends_without_newline = true;
      };
      while ((old_left || new_left) && i + 1 < lines.size()) {
        std::string_view b = lines[++i];
        char kind = b.empty() ? ' ' : b[0];  // a blank line: context whose space was stripped
        std::string body(b.empty() ? b : b.substr(1));
        if (kind == ' ' && old_left && new_left) {
          h.old_lines.push_back(body);
          h.new_lines.push_back(body);
          --old_left;
          --new_left;
        } else if (kind == '-' && old_left) {
          h.old_lines.push_back(body);
          --old_left;
        } else if (kind == '+' && new_left) {
          h.new_lines.push_back(body);
          --new_left;
        } else if (kind == '\\') {
          no_newline();
          continue;
        } else {
          throw PatchError((cur->new_path.empty() ? cur->old_path : cur->new_path) + ": hunk \"" + shown(l) +
                           "\" has fewer lines than its header says (at \"" + shown(b) + "\")");
        }
        last = kind;
      }
      if (old_left || new_left)
        throw PatchError((cur->new_path.empty() ? cur->old_path : cur->new_path) + ": hunk \"" + shown(l) + "\" is cut short");
      if (i + 1 < lines.size() && starts(lines[i + 1], "\\ ")) {
        ++i;
        no_newline();
      }
      cur->hunks.push_back(std::move(h));
      continue;
    }
  }
  start_git();
  if (out.empty()) throw PatchError("no file patch (no ---/+++ headers) found");
  return out;
}

void apply_patch(Files& files, const std::vector<FilePatch>& patch) {
  Files result = files;
  for (const FilePatch& raw : patch) {
    std::string old_path = raw.old_path.empty() ? "" : clean_repo_path(raw.old_path);
    std::string new_path = raw.new_path.empty() ? "" : clean_repo_path(raw.new_path);
    if (!old_path.empty()) check_no_links(result, old_path);
    if (!new_path.empty()) check_no_links(result, new_path);
    std::string content;
    bool executable = false;
    if (!old_path.empty()) {
      auto it = result.find(old_path);
      if (it == result.end()) throw PatchError(old_path + ": no such file in the repository");
      content = it->second.content;
      executable = it->second.executable;
    } else if (result.count(new_path)) {
      throw PatchError(new_path + ": the patch creates it, but it already exists");
    }
    content = apply_hunks(new_path.empty() ? old_path : new_path, content, raw.hunks);
    if (!old_path.empty()) result.erase(old_path);
    if (new_path.empty()) continue;  // deleted
    if (result.count(new_path)) throw PatchError(new_path + ": renamed onto an existing file");
    // A new file under a path that is a folder of the repository.
    auto below = result.lower_bound(new_path + "/");
    if (below != result.end() && starts(below->first, new_path + "/"))
      throw PatchError(new_path + ": is a folder of the repository");
    result[new_path] = File{std::move(content), raw.new_executable.value_or(executable), ""};
  }
  files = std::move(result);
}

}  // namespace nemokit::rl::code
