#include "prep/document_source.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "nemokit/runtime/json_file.hpp"

namespace nemokit::pretrain {
namespace fs = std::filesystem;
namespace {

bool is_blank(const std::string& s) { return s.find_first_not_of(" \t\r\f\v") == std::string::npos; }

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

bool is_jsonl(const fs::path& p) {
  const auto e = lower_extension(p);
  return e == ".jsonl" || e == ".ndjson";
}

bool is_text(const fs::path& p) {
  const auto e = lower_extension(p);
  return e == ".txt" || e == ".text" || e == ".md";
}

}  // namespace

std::vector<InputFile> collect_inputs(const std::vector<fs::path>& inputs) {
  std::vector<InputFile> files;
  for (const auto& input : inputs) {
    std::error_code ec;
    const auto status = fs::status(input, ec);
    if (ec || !fs::exists(status))
      throw std::runtime_error(input.string() +
                               ": input does not exist (data.inputs; the tiny corpus is written by "
                               "plugins/stage_pretrain/corpus/extract.sh)");
    if (fs::is_directory(status)) {
      std::vector<InputFile> found;
      for (auto it = fs::recursive_directory_iterator(input, fs::directory_options::follow_directory_symlink);
           it != fs::recursive_directory_iterator(); ++it) {
        const auto name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (!it->is_regular_file()) continue;
        if (is_jsonl(it->path()))
          found.push_back({it->path(), InputFormat::Jsonl, it->file_size()});
        else if (is_text(it->path()))
          found.push_back({it->path(), InputFormat::Text, it->file_size()});
      }
      std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back({input, is_jsonl(input) ? InputFormat::Jsonl : InputFormat::Text, fs::file_size(input)});
    }
  }
  if (files.empty())
    throw std::runtime_error("data.inputs: no .txt/.text/.md/.jsonl/.ndjson files found in the inputs");
  return files;
}

DocumentReader::DocumentReader(const InputFile& file, const PrepConfig& config)
    : file_(file), config_(config), in_(file.path, std::ios::binary) {
  if (!in_) throw std::runtime_error(file_.path.string() + ": cannot open for reading");
}

bool DocumentReader::keep(const std::string& doc) {
  int64_t visible = 0;
  for (unsigned char c : doc)
    if (!std::isspace(c) && ++visible >= config_.min_document_chars) return true;
  ++skipped_;
  return false;
}

bool DocumentReader::next(std::string& doc) {
  for (;;) {
    if (done_) return false;
    const bool got = file_.format == InputFormat::Jsonl ? next_jsonl(doc) : next_text(doc);
    if (!got) {
      done_ = true;
      if (in_.bad()) throw std::runtime_error(file_.path.string() + ": read error");
      return false;
    }
    if (keep(doc)) return true;
  }
}

bool DocumentReader::next_text(std::string& doc) {
  doc.clear();
  if (config_.text_split == TextSplit::File) {
    doc.assign(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
    if (in_.bad()) throw std::runtime_error(file_.path.string() + ": read error");
    done_ = true;
    return true;  // keep() drops it when empty
  }
  std::string line;
  bool any = false;
  while (std::getline(in_, line)) {
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (config_.text_split == TextSplit::Line) {
      if (is_blank(line)) continue;
      doc = std::move(line);
      return true;
    }
    if (is_blank(line)) {
      if (any) return true;
      continue;
    }
    if (any) doc.push_back('\n');
    doc += line;
    any = true;
  }
  return any;
}

bool DocumentReader::next_jsonl(std::string& doc) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_no_;
    if (is_blank(line)) continue;
    const std::string where = file_.path.string() + ":" + std::to_string(line_no_);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(where + ": invalid JSON: " + rt::json_error_text(e));
    }
    if (!j.is_object()) throw std::runtime_error(where + ": a JSONL line must be an object");
    const auto it = j.find(config_.jsonl_text_field);
    if (it == j.end())
      throw std::runtime_error(where + ": no field \"" + config_.jsonl_text_field + "\" (data.jsonl_text_field)");
    if (!it->is_string())
      throw std::runtime_error(where + ": field \"" + config_.jsonl_text_field + "\" is " + it->type_name() +
                               ", not a string");
    doc = it->get<std::string>();
    return true;
  }
  return false;
}

}  // namespace nemokit::pretrain
