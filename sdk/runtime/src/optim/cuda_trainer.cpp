// open_cuda_trainer, open_cuda_scorer: they live in the CUDA module (src/cuda/model/
// gpu_trainer.cpp), opened on first use like the rest of the CUDA path.
#include <stdexcept>
#include <string>

#include "../dist/cuda_module.hpp"
#include "nemokit/runtime/trainer.hpp"

namespace nemokit::rt {

std::unique_ptr<DeviceTrainer> open_cuda_trainer(NemotronH& model, AdamW& optimizer, const TrainOptions& options) {
  std::string why;
  using Open = DeviceTrainer*(NemotronH*, AdamW*, const TrainOptions*, std::string*, bool*);
  Open* open = cuda_entry<Open>("nemokit_rt_cuda_open_trainer", why);
  if (!open) throw std::runtime_error("device cuda: " + why);
  bool bad_setting = false;
  DeviceTrainer* trainer = open(&model, &optimizer, &options, &why, &bad_setting);
  if (!trainer) {
    if (bad_setting) throw std::invalid_argument(why);
    throw std::runtime_error("device cuda: " + why);
  }
  return std::unique_ptr<DeviceTrainer>(trainer);
}

std::unique_ptr<DeviceScorer> open_cuda_scorer(NemotronH& model) {
  std::string why;
  using Open = DeviceScorer*(NemotronH*, std::string*, bool*);
  Open* open = cuda_entry<Open>("nemokit_rt_cuda_open_scorer", why);
  if (!open) throw std::runtime_error("device cuda: " + why);
  bool bad_setting = false;
  DeviceScorer* scorer = open(&model, &why, &bad_setting);
  if (!scorer) {
    if (bad_setting) throw std::invalid_argument(why);
    throw std::runtime_error("device cuda: " + why);
  }
  return std::unique_ptr<DeviceScorer>(scorer);
}

}  // namespace nemokit::rt
