#include "config/model_table.hpp"

#include "config/config.hpp"
#include "util/error.hpp"

#include "nemokit/runtime/config.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/memory_plan.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/paths.hpp"
#include "util/memory_size.hpp"

#include <algorithm>
#include <filesystem>

#include <optional>

namespace nemokit {

namespace {

// The recipe's architecture, or nothing when [model] names a checkpoint instead (no layer stack).
std::optional<rt::NemotronHConfig> recipe_model(const toml::table& config, const std::string& where) {
  const toml::table* model = config["model"].as_table();
  if (!model ||
      (!model->contains("hybrid_override_pattern") && !model->contains("layers_block_type") && !model->contains("layer_types")))
    return std::nullopt;
  try {
    return rt::NemotronHConfig::from_recipe_table(toml_to_json(*model), where + " [model]");
  } catch (const std::runtime_error& e) {
    throw UserError(e.what());
  }
}

// The checkpoint a fine-tuning stage starts from, where [model] init_from names a folder here:
// its config.json, or that of the newest step of a run folder (`latest`). Nothing for a
// reference resolved when the job starts (stage:..., an artifact) or a folder not made yet.
std::optional<rt::NemotronHConfig> init_from_model(const toml::table& config) {
  const auto from = config["model"]["init_from"].value<std::string>();
  if (!from || from->empty() || from->find(':') != std::string::npos) return std::nullopt;
  std::filesystem::path dir = rt::expand_home(*from);
  if (auto newest = rt::CheckpointDir(dir, 0).latest()) dir = *newest;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(dir / "config.json", ec)) return std::nullopt;
  try {
    return rt::NemotronHConfig::load((dir / "config.json").string());
  } catch (const std::exception& e) {
    throw UserError("model.init_from: " + std::string(e.what()));
  }
}

}  // namespace

void check_model_table(const toml::table& config, const std::string& where) { recipe_model(config, where); }

MemoryBudget memory_budget(const JobShape& shape, bool here) {
  const int ranks = std::max(1, shape.tasks_per_node);
  if (!shape.gpu_memory.empty())
    return {parse_memory_size(shape.gpu_memory, "gpu_memory"), "gpu_memory = " + shape.gpu_memory + ", one GPU per rank"};
  if (here) {
    const long double machine = rt::machine_memory_bytes();
    if (machine <= 0) return {};
    return {machine / ranks,
            "this machine's " + rt::format_bytes(machine) + (ranks > 1 ? " over " + std::to_string(ranks) + " ranks" : "")};
  }
  if (!shape.mem.empty() && shape.mem != "0")
    return {parse_memory_size(shape.mem, "mem") / ranks,
            "mem = " + shape.mem + " per node" + (ranks > 1 ? " over " + std::to_string(ranks) + " tasks" : "")};
  return {};
}

std::string check_memory_plan(const toml::table& config, const std::string& where, const JobShape& shape,
                              const MemoryBudget& budget) {
  auto model = recipe_model(config, where);
  if (!model) model = init_from_model(config);
  if (!model) return "";
  auto integer = [&](const char* table, const char* key, int64_t fallback) {
    return config[table][key].value<int64_t>().value_or(fallback);
  };
  rt::MemoryLayout layout;
  layout.data_parallel = std::max<int64_t>(1, integer("parallel", "dp", shape.world_size()));
  layout.zero = integer("parallel", "zero", 0);
  layout.expert_parallel = std::max<int64_t>(1, integer("parallel", "ep", 1));
  if (layout.expert_parallel > 1) {  // the ranks refuse such a layout too, but only once started
    rt::ParallelOptions par;
    par.dp = layout.data_parallel, par.zero = layout.zero, par.ep = layout.expert_parallel;
    try {
      rt::check_expert_parallel(par, *model);
    } catch (const std::invalid_argument& e) {
      throw UserError(where + ": " + e.what());
    }
  }
  layout.cuda = config["train"]["device"].value<std::string>().value_or("cpu") == "cuda";
  layout.micro_batch_size = std::max<int64_t>(1, integer("train", "micro_batch_size", 1));
  // The sequence length: pretraining's; a fine-tuning stage's packs; RL's responses (its
  // prompts add theirs, unknown before the data is read).
  struct SeqSource {
    const char *table, *key, *note;
  };
  std::string seq_key = "train.seq_length", seq_note;
  layout.seq_length = 1;
  for (const SeqSource& s : {SeqSource{"train", "seq_length", ""}, SeqSource{"data", "pack_size", ""},
                             SeqSource{"grpo", "max_new_tokens", " (responses alone: the prompts add theirs)"}})
    if (const int64_t n = integer(s.table, s.key, 0); n > 0) {
      layout.seq_length = n, seq_key = std::string(s.table) + "." + s.key, seq_note = s.note;
      break;
    }
  const rt::MemoryPlan plan = rt::plan_memory(*model, layout);
  std::string ranks = layout.data_parallel > 1 ? std::to_string(layout.data_parallel) + " data-parallel ranks" : "1 rank";
  if (layout.expert_parallel > 1) ranks += ", experts over " + std::to_string(layout.expert_parallel);
  std::string line = std::string("# memory per rank (") + (layout.cuda ? "cuda: bf16 weights and activations" : "fp32") +
                     ", " + ranks + "): " + rt::memory_plan_text(plan, layout);
  if (budget.bytes > 0) line += " of " + rt::format_bytes(budget.bytes) + " (" + budget.source + ")";
  line += seq_note;
  if (budget.bytes > 0 && plan.total() > budget.bytes) {
    std::string hint;
    if (layout.zero == 0 && layout.data_parallel > 1) {
      rt::MemoryLayout sharded = layout;
      sharded.zero = 1;
      hint = "shard the optimizer state (parallel.zero = 1, saving " +
             rt::format_bytes(plan.optimizer - rt::plan_memory(*model, sharded).optimizer) + " per rank), ";
    }
    hint += "lower train.micro_batch_size or " + seq_key + ", or run on more memory";
    throw UserError(where + ": the job does not fit in memory: a rank needs " + rt::format_bytes(plan.total()) + ", more than " +
                    rt::format_bytes(budget.bytes) + " (" + budget.source + "): " + rt::memory_plan_text(plan, layout) +
                    ". To fit, " + hint);
  }
  return line + "\n";
}

}  // namespace nemokit
