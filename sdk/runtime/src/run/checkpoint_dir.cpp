#include "nemokit/runtime/run/checkpoint_dir.hpp"

#include "nemokit/runtime/atomic_file.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

namespace nemokit::rt {
namespace fs = std::filesystem;

fs::path CheckpointDir::for_step(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "step_%07lld", (long long)step);
  return root_ / name;
}

std::optional<fs::path> CheckpointDir::latest() const {
  std::ifstream in(root_ / "latest");
  std::string name;
  if (!(in >> name) || name.find('/') != std::string::npos) return std::nullopt;
  fs::path p = root_ / name;
  if (!fs::exists(p / "trainer_state.json")) return std::nullopt;
  return p;
}

namespace {

// An old step folder leaves in one rename, to a name no reader takes for a checkpoint, before
// its files go: removed file by file where it stood, a kill halfway left a step_NNNNNNN folder
// without its weights that looked like a checkpoint.
void remove_step(const fs::path& step) {
  fs::path gone = step;
  gone += ".removing";
  fs::remove_all(gone);
  fs::rename(step, gone);
  fs::remove_all(gone);
}

}  // namespace

void CheckpointDir::mark_latest(int64_t step) {
  fs::path dir = for_step(step);
  write_file_atomic(root_ / "latest", dir.filename().string() + "\n");
  std::vector<fs::path> steps;
  remove_dead_temporaries(root_);  // a killed run's `latest` being written
  for (const auto& e : fs::directory_iterator(root_)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || !name.starts_with("step_")) continue;
    if (name.find('.') == std::string::npos)
      steps.push_back(e.path());
    else if (name.ends_with(".removing"))  // one a killed run was removing
      fs::remove_all(e.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + size_t(keep_) < steps.size(); ++i)
    if (steps[i] != dir) remove_step(steps[i]);
}

std::string CheckpointDir::complete_message(int64_t step) const {
  return "training is already complete at step " + std::to_string(step) + ": the model is in " + for_step(step).string() +
         " (raise train.max_steps to train on, or point checkpoint.dir elsewhere to start over)";
}

}  // namespace nemokit::rt
