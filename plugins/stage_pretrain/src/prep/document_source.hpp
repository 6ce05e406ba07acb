#pragma once
// Turns the configured inputs (text files, JSONL files, folders of them) into a deterministic
// sequence of documents: files in sorted path order, documents in file order.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "prep/prep_config.hpp"

namespace nemokit::pretrain {

enum class InputFormat { Text, Jsonl };

struct InputFile {
  std::filesystem::path path;
  InputFormat format = InputFormat::Text;
  uint64_t size = 0;
};

// Expands folders (recursively; hidden entries skipped; only .txt/.text/.md and .jsonl/.ndjson
// files are taken from folders), keeps explicit files whatever their extension (.jsonl/.ndjson are
// JSONL, anything else text). Throws std::runtime_error naming a path that does not exist, and
// when nothing is found at all.
std::vector<InputFile> collect_inputs(const std::vector<std::filesystem::path>& inputs);

// Streams the documents of one file. Text: by paragraph (blank lines separate), line or whole
// file. JSONL: the string field `jsonl_text_field` of each non-blank line; a bad line is an error
// naming file and line. Documents with fewer than min_document_chars non-blank characters are
// skipped.
class DocumentReader {
 public:
  DocumentReader(const InputFile& file, const PrepConfig& config);
  // The next document into `doc`; false at the end of the file.
  bool next(std::string& doc);
  uint64_t skipped() const { return skipped_; }

 private:
  bool next_text(std::string& doc);
  bool next_jsonl(std::string& doc);
  bool keep(const std::string& doc);

  InputFile file_;
  const PrepConfig& config_;
  std::ifstream in_;
  uint64_t line_no_ = 0;
  uint64_t skipped_ = 0;
  bool done_ = false;
};

}  // namespace nemokit::pretrain
