#include "gpu_trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"
#include "model_impl.hpp"
#include "nemokit/runtime/grad_sync.hpp"
#include "norm.cuh"

namespace nemokit::rt::cuda {
namespace {

ParamStore& store(GpuNemotronH& g) { return g.internals().params; }
cudaStream_t stream_of(GpuNemotronH& g) { return g.internals().stream; }

NemotronH& refuse_sharded(NemotronH& model, const AdamW& optimizer) {
  if (optimizer.sharded())
    throw std::invalid_argument("parallel.zero: ZeRO-1 (zero = 1) is not supported with device \"cuda\" yet; use zero = 0");
  return model;
}

}  // namespace

GpuTrainer::GpuTrainer(NemotronH& model, AdamW& optimizer, const TrainOptions& options)
    : model_(model), optimizer_(optimizer), options_(options),
      gpu_(refuse_sharded(model, optimizer), nullptr, /*training=*/true) {
  for (auto& b : store(gpu_).blocks()) {
    BlockState& s = state_.emplace_back();
    if (!b.grad.get()) continue;
    s.master.reserve(size_t(b.numel));
    s.m.reserve(size_t(b.numel));
    s.v.reserve(size_t(b.numel));
  }
  partials_.reserve(kSumSquaresPartials);
  sumsq_.reserve(1);
  clip_scale_.reserve(1);
  sync_from_host();
}

GpuTrainer::~GpuTrainer() = default;

void GpuTrainer::sync_from_host() {
  gpu_.upload_weights();
  auto& blocks = store(gpu_).blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!blocks[i].grad.get()) continue;
    for (const ParamStore::Entry* e : blocks[i].entries) {
      const size_t at = size_t(e->device - blocks[i].weights.get()), n = size_t(e->host->value.numel());
      auto [m, v] = optimizer_.moments_of(e->host);
      NEMOKIT_CUDA_CHECK(cudaMemcpy(state_[i].master.get() + at, e->host->value.f32(), n * 4, cudaMemcpyHostToDevice));
      NEMOKIT_CUDA_CHECK(cudaMemcpy(state_[i].m.get() + at, m->f32(), n * 4, cudaMemcpyHostToDevice));
      NEMOKIT_CUDA_CHECK(cudaMemcpy(state_[i].v.get() + at, v->f32(), n * 4, cudaMemcpyHostToDevice));
    }
  }
}

void GpuTrainer::sync_to_host() {
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream_of(gpu_)));
  auto& blocks = store(gpu_).blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!blocks[i].grad.get()) continue;
    for (const ParamStore::Entry* e : blocks[i].entries) {
      const size_t at = size_t(e->device - blocks[i].weights.get()), n = size_t(e->host->value.numel());
      auto [m, v] = optimizer_.moments_of(e->host);
      NEMOKIT_CUDA_CHECK(cudaMemcpy(e->host->value.f32(), state_[i].master.get() + at, n * 4, cudaMemcpyDeviceToHost));
      NEMOKIT_CUDA_CHECK(cudaMemcpy(m->f32(), state_[i].m.get() + at, n * 4, cudaMemcpyDeviceToHost));
      NEMOKIT_CUDA_CHECK(cudaMemcpy(v->f32(), state_[i].v.get() + at, n * 4, cudaMemcpyDeviceToHost));
    }
  }
}

TrainStepStats GpuTrainer::step(float lr, const std::vector<Batch>& micro_batches) {
  if (micro_batches.empty()) throw std::invalid_argument("train_step: no micro-batches");
  Communicator* comm = options_.comm;
  const int world = comm ? comm->size() : 1;
  const int64_t global_micro =
      options_.global_micro_batches > 0 ? options_.global_micro_batches : int64_t(micro_batches.size()) * world;
  zero_grad();
  LossOptions loss_opts;
  loss_opts.grad_scale = 1.0f / float(global_micro);
  loss_opts.moe_aux_loss_coeff = options_.moe_aux_loss_coeff;
  loss_opts.mtp_loss_scale = options_.mtp_loss_scale;
  double sums[3] = {0, 0, 0};  // loss, mtp loss, tokens: train_step's
  for (const Batch& b : micro_batches) {
    const StepResult r = accumulate(b, loss_opts);
    sums[0] += double(r.loss) / double(global_micro);
    sums[1] += r.mtp_loss / double(global_micro);
    sums[2] += double(r.tokens);
  }
  if (comm && world > 1) comm->all_reduce_sum(sums, 3);
  TrainStepStats stats;
  stats.lr = lr;
  stats.loss = float(sums[0]);
  stats.mtp_loss = sums[1];
  stats.tokens = int64_t(sums[2]);
  stats.grad_norm = apply_gradients(lr);
  return stats;
}

void GpuTrainer::zero_grad() {
  gpu_.upload_buffers();  // the routers' biases, which the loop may have moved since the last step
  gpu_.zero_grad();
}

StepResult GpuTrainer::accumulate(const Batch& micro_batch, const LossOptions& opts) {
  return gpu_.forward_backward(micro_batch, opts, true);
}

double GpuTrainer::apply_gradients(float lr) {
  count_router_choices();
  if (options_.comm && options_.comm->size() > 1) sum_gradients_over_ranks();
  const double norm = clip_gradients();
  update(lr);
  if (options_.expert_bias_rate > 0) {
    model_.update_expert_bias(options_.expert_bias_rate);
    gpu_.upload_buffers();
  }
  return norm;
}

std::vector<float> GpuTrainer::token_losses(const Batch& batch, std::vector<float>* entropy) {
  return gpu_.token_losses(batch, entropy);
}

// The device counts join the CPU model's (NemotronH::expert_load), which the bias update and the
// loops' statistics read, and are summed over the ranks as apply_gradients does.
void GpuTrainer::count_router_choices() {
  auto load = model_.expert_load();
  const auto device = gpu_.take_expert_load();
  if (load.empty()) return;
  if (device.size() != load.size()) throw std::logic_error("GpuTrainer: the GPU model has another number of MoE layers");
  for (size_t l = 0; l < load.size(); ++l)
    for (size_t e = 0; e < load[l].size(); ++e) load[l][e] += device[l][e];
  model_.set_expert_load(load);
  if (options_.comm && options_.comm->size() > 1) all_reduce_expert_load(model_, *options_.comm);
}

void GpuTrainer::sum_gradients_over_ranks() {
  cudaStream_t stream = stream_of(gpu_);
  for (auto& b : store(gpu_).blocks()) {
    if (!b.grad.get()) continue;
    staging_.resize(size_t(b.numel));
    NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(staging_.data(), b.grad.get(), sizeof(float) * staging_.size(),
                                       cudaMemcpyDeviceToHost, stream));
    NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
    options_.comm->all_reduce_sum(staging_.data(), staging_.size());
    NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(b.grad.get(), staging_.data(), sizeof(float) * staging_.size(),
                                       cudaMemcpyHostToDevice, stream));
  }
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// clip_grad_norm on the device: the squares summed in double in a fixed order, the clipping
// factor left on the device for AdamW to apply as it reads each gradient.
double GpuTrainer::clip_gradients() {
  cudaStream_t stream = stream_of(gpu_);
  NEMOKIT_CUDA_CHECK(cudaMemsetAsync(partials_.get(), 0, sizeof(double) * kSumSquaresPartials, stream));
  for (auto& b : store(gpu_).blocks())
    if (b.grad.get()) sum_squares_partial(partials_.get(), b.grad.get(), b.numel, stream);
  sum_squares_finish(sumsq_.get(), partials_.get(), stream);
  grad_clip_scale(clip_scale_.get(), sumsq_.get(), options_.max_grad_norm, stream);
  double sumsq = 0;
  NEMOKIT_CUDA_CHECK(cudaMemcpyAsync(&sumsq, sumsq_.get(), sizeof sumsq, cudaMemcpyDeviceToHost, stream));
  NEMOKIT_CUDA_CHECK(cudaStreamSynchronize(stream));
  return std::sqrt(sumsq);
}

void GpuTrainer::update(float lr) {
  const AdamWConfig& c = optimizer_.config();
  const int64_t step = optimizer_.steps() + 1;
  optimizer_.set_steps(step);  // the CPU optimizer counts the device's updates (checkpoints, schedules)
  auto& blocks = store(gpu_).blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto& b = blocks[i];
    if (!b.grad.get()) continue;
    const AdamWHyper hyper{lr, c.beta1, c.beta2, c.eps, b.decay ? c.weight_decay : 0.0f, step};
    adamw_step(state_[i].master.get(), state_[i].m.get(), state_[i].v.get(), b.weights.get(), b.grad.get(), b.numel,
               hyper, clip_scale_.get(), stream_of(gpu_));
  }
}

}  // namespace nemokit::rt::cuda

namespace {

// A frozen model's forward passes on the device (open_cuda_scorer).
class GpuScorer : public nemokit::rt::DeviceScorer {
 public:
  explicit GpuScorer(nemokit::rt::NemotronH& model) : gpu_(model) {}
  std::vector<float> token_losses(const nemokit::rt::Batch& batch, std::vector<float>* entropy) override {
    return gpu_.token_losses(batch, entropy);
  }

 private:
  nemokit::rt::cuda::GpuNemotronH gpu_;
};

// One GPU per rank of a node, as the NCCL backend picks it: LOCAL_RANK (the executors'), else
// Open MPI's, modulo the visible devices. Without this every rank of a node would share GPU 0.
bool select_rank_device(std::string* error) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    *error = "no CUDA device is visible";
    return false;
  }
  int local_rank = 0;
  for (const char* name : {"LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"})
    if (const char* v = std::getenv(name); v && *v) {
      local_rank = std::max(0, std::atoi(v));
      break;
    }
  if (const cudaError_t e = cudaSetDevice(local_rank % devices); e != cudaSuccess) {
    *error = "cudaSetDevice(" + std::to_string(local_rank % devices) + ") for local rank " + std::to_string(local_rank) +
             ": " + cudaGetErrorString(e);
    return false;
  }
  return true;
}

// Builds what `make` returns, or reports why not: a setting the GPU path refuses comes back with
// *bad_setting set, so the caller can throw std::invalid_argument as the CPU path does.
template <class Make>
auto open_on_rank_device(std::string* error, bool* bad_setting, Make make) -> decltype(make()) {
  if (!select_rank_device(error)) return nullptr;
  try {
    return make();
  } catch (const std::invalid_argument& e) {
    *bad_setting = true;
    *error = e.what();
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return nullptr;
}

}  // namespace

// The module's entries (src/optim/cuda_trainer.cpp opens them).
extern "C" __attribute__((visibility("default"))) nemokit::rt::DeviceTrainer* nemokit_rt_cuda_open_trainer(
    nemokit::rt::NemotronH* model, nemokit::rt::AdamW* optimizer, const nemokit::rt::TrainOptions* options,
    std::string* error, bool* bad_setting) {
  return open_on_rank_device(error, bad_setting, [&]() -> nemokit::rt::DeviceTrainer* {
    return new nemokit::rt::cuda::GpuTrainer(*model, *optimizer, *options);
  });
}

extern "C" __attribute__((visibility("default"))) nemokit::rt::DeviceScorer* nemokit_rt_cuda_open_scorer(
    nemokit::rt::NemotronH* model, std::string* error, bool* bad_setting) {
  return open_on_rank_device(error, bad_setting, [&]() -> nemokit::rt::DeviceScorer* { return new GpuScorer(*model); });
}
