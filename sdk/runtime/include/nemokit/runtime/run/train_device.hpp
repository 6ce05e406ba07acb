#pragma once
// Where a training loop's steps run: `device = "cpu"` (the default, the float32 reference) or
// `"cuda"` (bf16 on the GPU with fp32 masters, trainer.hpp's DeviceTrainer) in a stage's
// [train] table. The loop steps through TrainStepper either way and calls sync_to_host before
// anything reads the CPU model (evaluation, checkpoints, samples).

#include "nemokit/runtime/tensor.hpp"
#include "nemokit/runtime/trainer.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <memory>
#include <string>
#include <vector>

namespace nemokit::rt {

// Reads `device` from the table: "cpu" or "cuda"; throws std::invalid_argument naming the key.
Device read_train_device(TableReader& train);
const char* device_name(Device device);
// Fails at once, before data is prepared, where `device` cannot be had here (no CUDA module in
// this build, no visible GPU): std::runtime_error naming `key` and the reason.
void require_train_device(Device device, const std::string& key = "train.device");

// The scorer of a frozen model on `device` (RL's reference policy), or nullptr on the CPU. Its
// errors name `key` as TrainStepper's do.
std::unique_ptr<DeviceScorer> open_device_scorer(Device device, NemotronH& model, const std::string& key = "train.device");

class TrainStepper {
 public:
  // On cuda, opens the CUDA trainer from the model's and optimizer's current state (after a
  // resumed checkpoint was loaded into them). Its errors name `key` ("train.device: ...").
  TrainStepper(Device device, NemotronH& model, AdamW& optimizer, const TrainOptions& options,
               const std::string& key = "train.device");
  // train_step(model, optimizer, lr, micro_batches, options) where the steps run.
  TrainStepStats step(float lr, const std::vector<Batch>& micro_batches);
  // The CPU model and optimizer = the device's state; nothing to do on the CPU.
  void sync_to_host();
  Device device() const { return device_; }
  // The GPU trainer on cuda (loops that run their own passes, as RL's updates, use its parts);
  // nullptr on the CPU.
  DeviceTrainer* gpu() { return gpu_.get(); }

 private:
  Device device_;
  NemotronH& model_;
  AdamW& optimizer_;
  TrainOptions options_;
  std::unique_ptr<DeviceTrainer> gpu_;
};

}  // namespace nemokit::rt
