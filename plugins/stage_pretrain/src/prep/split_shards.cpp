#include "prep/split_shards.hpp"

#include <cstdio>
#include <regex>

namespace nemokit::pretrain {
namespace fs = std::filesystem;

fs::path shard_prefix(const fs::path& split_dir, size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "shard_%06zu", index);
  return split_dir / name;
}

SplitShards::SplitShards(fs::path split_dir, rt::TokenDType dtype, int64_t shard_size_tokens)
    : dir_(std::move(split_dir)), dtype_(dtype), shard_size_tokens_(shard_size_tokens) {
  fs::create_directories(dir_);
}

void SplitShards::add(std::span<const int32_t> document) {
  if (open_ && open_->tokens() >= static_cast<uint64_t>(shard_size_tokens_)) {
    open_->finish();
    open_.reset();
  }
  if (!open_) {
    shards_.push_back({shard_prefix(dir_, shards_.size()), 0, 0});
    open_ = std::make_unique<rt::IndexedDatasetWriter>(shards_.back().prefix, dtype_);
  }
  open_->add_document(document);
  shards_.back().tokens += document.size();
  shards_.back().documents += 1;
}

void SplitShards::finish() {
  if (open_) {
    open_->finish();
    open_.reset();
  }
  // Shards numbered past this run's last one belong to an older, larger run: not in blend.json,
  // and confusing to anyone listing the folder.
  static const std::regex shard_file(R"(shard_(\d{6})\.(bin|idx))");
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, shard_file) && std::stoul(m[1].str()) >= shards_.size())
      stale.push_back(entry.path());
  }
  for (const auto& p : stale) fs::remove(p);
}

uint64_t SplitShards::tokens() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s.tokens;
  return n;
}

uint64_t SplitShards::documents() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s.documents;
  return n;
}

}  // namespace nemokit::pretrain
