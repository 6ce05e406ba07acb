#include "nemokit/runtime/run/parallel_options.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

#include "nemokit/runtime/run/table_reader.hpp"

namespace nemokit::rt {

ParallelOptions read_parallel_table(const nlohmann::json& config, int world_size) {
  ParallelOptions o;
  o.dp = world_size;
  if (config.contains("parallel")) {
    TableReader t(config["parallel"], "parallel");
    t.integer("dp", o.dp, 1);
    t.integer("zero", o.zero, 0);
    t.integer("ep", o.ep, 1);
    std::string backend;
    t.string("backend", backend);  // read by read_comm_backend before the communicator opens
    if (o.zero > 1)
      throw std::invalid_argument(
          "parallel.zero: " + std::to_string(o.zero) +
          " is not a ZeRO stage nemokit has; 0 keeps the optimizer state whole on every rank, 1 shards it "
          "over the data-parallel ranks");
    t.no_unknown_keys();
  }
  if (o.dp != world_size)
    throw std::invalid_argument("parallel.dp: " + std::to_string(o.dp) + ", but the job has " + std::to_string(world_size) +
                                " rank(s) (WORLD_SIZE); data parallel spans every rank, so set parallel.dp to " +
                                std::to_string(world_size) + " or start " + std::to_string(o.dp) + " ranks");
  const std::string ranks = std::to_string(world_size);
  if (world_size % o.ep != 0)
    throw std::invalid_argument("parallel.ep: " + std::to_string(o.ep) + " does not divide the job's " + ranks +
                                " rank(s): the experts are split over groups of ep consecutive ranks, each group holding "
                                "every expert once, so ep must be 1, " +
                                ranks + " or a divisor of it");
  return o;
}

CommBackend read_comm_backend(const nlohmann::json& config) {
  std::string word;
  if (config.contains("parallel")) TableReader(config["parallel"], "parallel").string("backend", word);
  return parse_comm_backend(word, "parallel.backend");
}

void check_expert_parallel(const ParallelOptions& parallel, const NemotronHConfig& model) {
  if (parallel.ep <= 1) return;
  const std::string ep = std::to_string(parallel.ep);
  const bool moe = model.pattern.find('E') != std::string::npos ||
                   (model.num_nextn_predict_layers > 0 && model.mtp_pattern.find('E') != std::string::npos);
  if (!moe)
    throw std::invalid_argument("parallel.ep: " + ep +
                                ", but the model has no MoE layer (no E in model.hybrid_override_pattern '" + model.pattern +
                                "'): there are no experts to split; set parallel.ep = 1");
  if (model.n_routed_experts % parallel.ep != 0)
    throw std::invalid_argument("parallel.ep: " + ep + " does not divide model.n_routed_experts = " +
                                std::to_string(model.n_routed_experts) + ": every rank holds the same number of experts");
}

Communicator* expert_parallel_comm(const ParallelOptions& parallel, Communicator& comm) {
  return parallel.ep > 1 ? &comm : nullptr;
}

void refuse_expert_parallel(const ParallelOptions& parallel, const std::string& stage) {
  if (parallel.ep > 1)
    throw std::invalid_argument("parallel.ep: " + std::to_string(parallel.ep) + ": " + stage +
                                " does not split experts over ranks; set parallel.ep = 1");
}

AdamW make_optimizer(std::vector<Parameter*> params, const AdamWConfig& config, const ParallelOptions& parallel,
                     Communicator& comm) {
  if (parallel.zero == 1) return AdamW(std::move(params), config, comm);
  return AdamW(std::move(params), config);
}

std::string describe_layout(const ParallelOptions& parallel, const Communicator& comm) {
  std::string s;
  if (parallel.dp > 1) s += " over " + std::to_string(parallel.dp) + " data-parallel ranks (" + comm.backend() + ")";
  if (parallel.zero == 1) s += std::string(s.empty() ? " with" : ",") + " optimizer state sharded (ZeRO-1)";
  if (parallel.ep > 1) {
    s += ", experts split over " + std::to_string(parallel.ep) + " ranks";
    if (parallel.dp > parallel.ep) s += " in each of " + std::to_string(parallel.dp / parallel.ep) + " groups";
    s += " (expert parallel)";
  }
  return s;
}

DataSlice data_parallel_slice(int64_t global_micro_batches, int64_t dp, int rank, const char* batch_key) {
  if (dp < 1 || global_micro_batches % dp != 0)
    throw std::invalid_argument(std::string(batch_key) + ": its " + std::to_string(global_micro_batches) +
                                " micro-batches per step do not split evenly over parallel.dp = " + std::to_string(dp) +
                                " ranks (make the global batch a multiple of micro batch x parallel.dp)");
  DataSlice s;
  s.count = global_micro_batches / dp;
  s.first = s.count * rank;
  return s;
}

std::unique_ptr<Communicator> open_job_communicator(const nlohmann::json& config) {
  CommOptions options;
  options.timeout = comm_timeout_from_env(std::chrono::minutes(5));
  options.backend = read_comm_backend(config);  // parallel.backend = "nccl": one GPU per rank
  return open_communicator(options);
}

}  // namespace nemokit::rt
