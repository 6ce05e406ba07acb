#pragma once
// What a checkpoint must agree with to be resumed: the data it was trained on (the model is
// checked by load_training_checkpoint). A rerun whose config names other data than the run it
// resumes is refused, naming the difference, instead of quietly continuing on data it never saw.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace nemokit::rt {

// A prepared data folder as a checkpoint remembers it: its path, and each file under it (to two
// levels) with its size and, for the folder's own files up to 1 MiB (manifests, metadata, task
// lists), its sha256. Cheap for gigabytes of shards or thousands of images, and a
// re-preparation that changes what a run reads changes it.
nlohmann::json describe_data(const std::filesystem::path& prepared);

// Throws std::runtime_error when `saved` (a checkpoint's TrainerState::data_source) and `now`
// (describe_data of the config's data) differ, naming the checkpoint, the two paths or the first
// file that differs, and how to start over. Passes when the checkpoint recorded none (older ones).
void check_same_data(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint);

}  // namespace nemokit::rt
