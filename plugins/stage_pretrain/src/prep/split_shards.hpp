#pragma once
// The shards of one split (train, valid or test): OUT/<split>/shard_NNNNNN.{bin,idx}, a new shard
// started once the current one holds shard_size_tokens tokens.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "nemokit/runtime/data/indexed_dataset.hpp"

namespace nemokit::pretrain {

struct ShardInfo {
  std::filesystem::path prefix;
  uint64_t tokens = 0;
  uint64_t documents = 0;
};

class SplitShards {
 public:
  SplitShards(std::filesystem::path split_dir, rt::TokenDType dtype, int64_t shard_size_tokens);
  void add(std::span<const int32_t> document);
  // Finishes the open shard and removes shard files a previous run left beyond this run's count.
  void finish();
  const std::vector<ShardInfo>& shards() const { return shards_; }
  uint64_t tokens() const;
  uint64_t documents() const;

 private:
  std::filesystem::path dir_;
  rt::TokenDType dtype_;
  int64_t shard_size_tokens_;
  std::unique_ptr<rt::IndexedDatasetWriter> open_;
  std::vector<ShardInfo> shards_;
};

std::filesystem::path shard_prefix(const std::filesystem::path& split_dir, size_t index);

}  // namespace nemokit::pretrain
