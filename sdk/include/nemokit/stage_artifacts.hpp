// What a stage plugin calls when it has produced something: its data folder after data prep, its
// model after a finished run. Header-only over the artifact store of libnemokit_runtime
// (nemokit/runtime/artifacts.hpp); include after <nemokit/plugin.hpp>.
//
//   int data_prep(const StageCall& call) override {
//     ... write the folder and its metadata.json ...
//     nemokit::sdk::publish_data(call, config, out);
//   }
//   int run(const StageCall& call) override {
//     int rc = train(...);
//     if (rc == 0) nemokit::sdk::publish_trained_model(call, config, {init_model_dir});
//     return rc;
//   }
//
// The store is the one nemokit resolved when the job was made ($NEMOKIT_ARTIFACTS_ROOT in the
// task); only rank 0 publishes. Publishing comes after the stage's work, which stays valid when
// the store cannot take it: a failure is one warning line in the job's log, not a failed job.
#pragma once

#include <nemokit/plugin.hpp>

#include "nemokit/runtime/artifacts.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace nemokit::sdk {

inline rt::artifacts::Producer artifact_producer(const StageCall& call, const char* verb, const nlohmann::json& config) {
  return {call.family, call.stage, call.substage, verb, config, call.job_dir, [host = call.host](const std::string& l) { host.info(l); }};
}

template <class F>
void publish_or_warn(const StageCall& call, F&& publish) {
  try {
    publish();
  } catch (const std::exception& e) {
    call.host.warn(std::string("artifact store: ") + e.what() + " (not published)");
  }
}

// A data prep's folder (its metadata.json names the type and the name).
inline void publish_data(const StageCall& call, const nlohmann::json& config, const std::filesystem::path& folder) {
  publish_or_warn(call, [&] { rt::artifacts::publish_data_folder(artifact_producer(call, "data prep", config), folder); });
}

// A finished run's model (the newest checkpoint of checkpoint.dir), naming the data it trained on
// (data.output) and `also_used` (the model it started from).
inline void publish_trained_model(const StageCall& call, const nlohmann::json& config,
                                  const std::vector<std::filesystem::path>& also_used = {}) {
  publish_or_warn(call, [&] {
    rt::artifacts::TrainedModel m = rt::artifacts::trained_model_of(config, call.job_dir);
    m.used.insert(m.used.end(), also_used.begin(), also_used.end());
    rt::artifacts::publish_model(artifact_producer(call, "run", config), m);
  });
}

}  // namespace nemokit::sdk
