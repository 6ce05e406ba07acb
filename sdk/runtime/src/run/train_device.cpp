#include "nemokit/runtime/run/train_device.hpp"

#include <stdexcept>

#include "../dist/cuda_module.hpp"

namespace nemokit::rt {

Device read_train_device(TableReader& train) {
  std::string word = "cpu";
  train.string("device", word);
  if (word == "cpu") return Device::cpu;
  if (word == "cuda") return Device::cuda;
  train.fail("device", "\"" + word + "\" is not a device (\"cpu\" or \"cuda\")");
}

const char* device_name(Device device) { return device == Device::cuda ? "cuda" : "cpu"; }

void require_train_device(Device device, const std::string& key) {
  if (device != Device::cuda) return;
  std::string why;
  auto* devices = cuda_entry<int(std::string*)>("nemokit_rt_cuda_devices", why);  // loads the CUDA module
  if (devices && devices(&why) > 0) return;
  throw std::runtime_error(key + " = \"cuda\": " + why);
}

namespace {

// open(), its errors prefixed with `key = "cuda": `.
template <class Open>
auto naming_the_key(const std::string& key, Open open) -> decltype(open()) {
  try {
    return open();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(key + " = \"cuda\": " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(key + " = \"cuda\": " + e.what());
  }
}

}  // namespace

std::unique_ptr<DeviceScorer> open_device_scorer(Device device, NemotronH& model, const std::string& key) {
  if (device != Device::cuda) return nullptr;
  return naming_the_key(key, [&] { return open_cuda_scorer(model); });
}

TrainStepper::TrainStepper(Device device, NemotronH& model, AdamW& optimizer, const TrainOptions& options,
                           const std::string& key)
    : device_(device), model_(model), optimizer_(optimizer), options_(options) {
  if (device_ != Device::cuda) return;
  gpu_ = naming_the_key(key, [&] { return open_cuda_trainer(model, optimizer, options); });
}

TrainStepStats TrainStepper::step(float lr, const std::vector<Batch>& micro_batches) {
  if (gpu_) return gpu_->step(lr, micro_batches);
  return train_step(model_, optimizer_, lr, micro_batches, options_);
}

void TrainStepper::sync_to_host() {
  if (gpu_) gpu_->sync_to_host();
}

}  // namespace nemokit::rt
