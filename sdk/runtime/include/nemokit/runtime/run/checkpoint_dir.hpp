#pragma once
// The run's checkpoint folder: step_NNNNNNN/ training checkpoints (weights in the Hugging Face
// layout, optimizer, trainer state) and a `latest` file naming the newest complete one. Old
// checkpoints beyond `keep` are removed only after a newer one is in place.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace nemokit::rt {

class CheckpointDir {
 public:
  CheckpointDir(std::filesystem::path root, int64_t keep) : root_(std::move(root)), keep_(keep) {}
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path for_step(int64_t step) const;
  std::optional<std::filesystem::path> latest() const;  // nullopt when none is complete
  void mark_latest(int64_t step);                       // atomically, then prunes old ones
  // What a rerun of a finished run says: "training is already complete at step N: the model is
  // in ROOT/step_N (raise train.max_steps to train on, or point checkpoint.dir elsewhere to start
  // over)".
  std::string complete_message(int64_t step) const;

 private:
  std::filesystem::path root_;
  int64_t keep_;
};

}  // namespace nemokit::rt
