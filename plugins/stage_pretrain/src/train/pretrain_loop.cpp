#include "train/pretrain_loop.hpp"

#include "prep/data_prep.hpp"
#include "train/pretrain_options.hpp"

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/data/gpt_dataset.hpp"
#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/heldout_loss.hpp"
#include "nemokit/runtime/run/resume_check.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/rank0_checkpoint.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/stop_signal.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "nemokit/runtime/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace nemokit::pretrain {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Model FLOPs per trained token (forward + backward), as llm.c counts them: 6 x the parameters a
// token passes through (routed experts by top-k share, embeddings excluded unless tied into the
// head) plus the attention scores.
// Counted over the whole model's layout: under expert parallel a rank holds only its experts.
double flops_per_token(rt::NemotronH& model, int64_t seq) {
  const auto& c = model.config();
  double active = 0;
  for (const rt::ParamSlot& slot : model.parameter_layout()) {
    if (slot.local && slot.local->buffer) continue;
    double n = 1;
    for (int64_t d : slot.shape) n *= double(d);
    if (slot.name.find(".experts.") != std::string::npos) n *= double(c.num_experts_per_tok) / double(c.n_routed_experts);
    if (slot.name == "backbone.embeddings.weight" && !c.tie_word_embeddings) continue;
    active += n;
  }
  int64_t attn_layers = std::count(c.pattern.begin(), c.pattern.end(), '*');
  return 6.0 * active + 6.0 * double(attn_layers) * double(seq) * double(c.num_attention_heads * c.head_dim);
}

// Max over experts of load / mean load, averaged over MoE layers: 1.0 is perfect balance.
double expert_imbalance(const std::vector<std::vector<int64_t>>& loads) {
  double sum = 0;
  int n = 0;
  for (const auto& layer : loads) {
    double total = 0, mx = 0;
    for (int64_t c : layer) total += double(c), mx = std::max(mx, double(c));
    if (total <= 0) continue;
    sum += mx / (total / double(layer.size()));
    ++n;
  }
  return n ? sum / n : 0.0;
}

struct Data {
  fs::path dir, blend, tokenizer;
};

Data ensure_data(const json& config, const sdk::Host& host) {
  const PrepConfig prep = parse_prep_config(data_table(config));
  if (!prep.output) throw std::invalid_argument("data.output: the prepared data's folder is required to train");
  Data d;
  d.dir = *prep.output;
  d.blend = d.dir / "blend.json";
  if (!fs::exists(d.dir / "metadata.json")) {
    host.info("no prepared data in " + d.dir.string() + ": preparing it now (nemokit data prep)");
    int rc = run_pretrain_data_prep(prep, d.dir, std::cerr);
    if (rc == 2) throw std::invalid_argument("data prep: the [data] table is not valid (see above)");
    if (rc != 0) throw std::runtime_error("data prep failed (see above)");
  }
  d.tokenizer = prep.tokenizer.value_or(d.dir / "tokenizer.json");
  return d;
}

// The same validation windows every time, so evaluations are comparable along the run; under
// data parallel each rank evaluates every dp-th batch and the sums meet.
double evaluate(rt::NemotronH& model, const Data& data, const PretrainOptions& o, rt::Communicator& comm) {
  return rt::heldout_loss(
             model, {data.blend, "valid", o.seq_length, o.seed ^ 0x5eed, o.micro_batch_size, o.eval_steps * o.micro_batch_size},
             &comm)
      .mean();
}

}  // namespace

int run_pretraining(const json& config, const fs::path& job_dir, const sdk::Host& host) {
  PretrainOptions o = PretrainOptions::from_config(config);
  if (o.checkpoint_dir.empty()) o.checkpoint_dir = job_dir / "checkpoints";
  if (!config.contains("model") || !config["model"].is_object()) throw std::invalid_argument("model: the table is missing");
  rt::NemotronHConfig mc = rt::NemotronHConfig::from_recipe_table(config["model"], "config [model]");
  mc.validate("config [model]");
  rt::require_train_device(o.device);

  // Ranks are started by the executor (several through mpirun); data parallel spans them all.
  std::unique_ptr<rt::Communicator> comm = rt::open_job_communicator(config);
  const rt::ParallelOptions par = rt::read_parallel_table(config, comm->size());
  rt::check_expert_parallel(par, mc);
  const rt::DataSlice slice = rt::data_parallel_slice(o.accumulation_steps(), par.dp, comm->rank(), "train.global_batch_size");
  const bool writer = comm->rank() == 0;  // rank 0 alone writes checkpoints, metrics and progress

  // Rank 0 prepares missing data while the others wait, so no two ranks write the same shards.
  std::optional<Data> prepared;
  if (writer) prepared = ensure_data(config, host);
  comm->wait_for_ranks(rt::rank0_work_timeout());  // however long rank 0 prepares
  if (!writer) prepared = ensure_data(config, host);
  const Data data = *prepared;
  rt::Tokenizer tok = rt::Tokenizer::load(data.tokenizer);
  if (tok.vocab_size() > mc.vocab_size)
    throw std::invalid_argument("model.vocab_size: " + std::to_string(mc.vocab_size) + " is smaller than the tokenizer's " +
                                std::to_string(tok.vocab_size()) + " ids (" + data.tokenizer.string() + ")");

  // Expert parallel: this rank creates its block of each MoE layer's experts; the weights are
  // those one rank would draw (init_weights skips the other ranks' draws).
  rt::NemotronH model(mc, rt::expert_parallel_comm(par, *comm), int(par.ep));
  model.init_weights(o.seed);
  rt::AdamW optimizer = rt::make_optimizer(model.parameters(), o.optim.adamw(), par, *comm);
  const rt::LrSchedule sched = o.optim.lr_schedule(o.max_steps);

  rt::BlendedSampler train = rt::open_blended_sampler(rt::read_blend_split(data.blend, "train"), o.seq_length, o.seed);
  fs::create_directories(o.checkpoint_dir);
  rt::CheckpointDir ckpts(o.checkpoint_dir, o.keep_checkpoints);
  rt::TrainerState state;
  const json data_now = rt::describe_data(data.dir);
  if (o.resume) {
    // Every rank restores the same checkpoint (rank 0 wrote it): weights, moments and the
    // position in the global sample stream, of which each rank then takes its slice.
    if (auto last = ckpts.latest()) {
      state = rt::load_training_checkpoint(last->string(), model, optimizer);
      rt::check_same_data(state.data_source, data_now, last->string());
      train.restore(rt::SamplerPosition::from_json(state.data_position, (*last / "trainer_state.json").string()));
      if (writer) host.info("resumed from " + last->string() + " at step " + std::to_string(state.step));
    }
  }
  if (writer && !fs::exists(o.checkpoint_dir / "tokenizer.json")) tok.save(o.checkpoint_dir / "tokenizer.json");
  state.data_source = data_now;  // what every checkpoint of this run was trained on

  std::optional<rt::MetricsLog> metrics;
  std::optional<rt::Progress> progress;
  if (writer) {
    metrics.emplace(job_dir / "metrics.jsonl");
    progress.emplace("step", o.max_steps, o.log_interval);
  }
  rt::StopSignal stop;
  const double fpt = flops_per_token(model, o.seq_length);
  const int64_t accum = o.accumulation_steps();
  if (writer) {
    host.info("pretraining " + mc.pattern + " (" + std::to_string(model.parameter_layout().size()) + " tensors), " +
              std::to_string(o.max_steps) + " steps of " + std::to_string(o.global_batch_size) + "x" +
              std::to_string(o.seq_length) + " tokens" + rt::describe_layout(par, *comm) +
              (o.device == rt::Device::cuda ? " on cuda" : "") + "; checkpoints in " +
              o.checkpoint_dir.string());
    if (state.step >= o.max_steps) host.info(ckpts.complete_message(state.step));
  }

  auto save = [&](int64_t step) {
    state.step = step;
    state.data_position = train.position().to_json();
    const fs::path written = rt::save_on_rank0(ckpts, step, model, optimizer, state, &tok, *comm);
    if (writer) progress->note("checkpoint step " + std::to_string(step) + " -> " + written.string());
  };

  rt::TrainOptions to;
  to.max_grad_norm = o.optim.grad_clip;
  to.expert_bias_rate = 0;  // applied below, after the load statistics are read
  to.moe_aux_loss_coeff = float(o.moe_aux_loss_coeff);
  to.mtp_loss_scale = float(o.mtp_loss_scaling_factor);
  to.comm = comm.get();
  to.global_micro_batches = accum;
  // From here the weights and moments live where the steps run; the CPU model is brought up to
  // date before it is read (evaluation, checkpoints, the sample).
  rt::TrainStepper stepper(o.device, model, optimizer, to);
  for (int64_t step = state.step; step < o.max_steps; ++step) {
    auto t0 = Clock::now();
    // Every rank draws the whole global batch in the same order and keeps its slice: the sample
    // stream (and its checkpointed position) is the same whatever the number of ranks.
    std::vector<rt::Batch> micro;
    micro.reserve(size_t(slice.count));
    for (int64_t a = 0; a < accum; ++a) {
      std::vector<int32_t> windows = train.next_batch(size_t(o.micro_batch_size));
      if (a >= slice.first && a < slice.first + slice.count)
        micro.push_back(rt::window_batch(windows, o.micro_batch_size, o.seq_length));
    }
    float lr = sched.lr(step);
    rt::TrainStepStats s = stepper.step(lr, micro);
    double imbalance = expert_imbalance(model.expert_load());
    if (o.moe_bias_update_rate > 0) model.update_expert_bias(float(o.moe_bias_update_rate));
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    double tps = double(o.global_batch_size * o.seq_length) / secs;
    json m = {{"step", step + 1},
              {"loss", s.loss},
              {"lr", lr},
              {"grad_norm", s.grad_norm},
              {"tokens_per_s", tps},
              {"tflops", fpt * tps / 1e12},
              {"expert_imbalance", imbalance}};
    if (o.peak_tflops > 0) m["mfu"] = fpt * tps / 1e12 / o.peak_tflops;
    if (model.config().num_nextn_predict_layers > 0) m["mtp_loss"] = s.mtp_loss;  // the part of "loss" MTP adds
    if (writer) {
      metrics->write(m);
      progress->update(step + 1, rt::training_detail(s.loss, tps));
    }

    bool last = step + 1 == o.max_steps;
    const bool evaluating = o.eval_steps > 0 && ((o.eval_interval > 0 && (step + 1) % o.eval_interval == 0) || last);
    const int stopping = rt::stop_on_any_rank(stop, *comm);  // the signal, 0: none
    const bool saving = (o.save_interval > 0 && (step + 1) % o.save_interval == 0) || last || stopping;
    if (evaluating || saving) stepper.sync_to_host();
    if (evaluating) {
      double val = evaluate(model, data, o, *comm);
      if (writer) {
        metrics->write({{"step", step + 1}, {"val_loss", val}});
        char line[128];
        std::snprintf(line, sizeof line, "step %lld: val_loss %.4f (train loss %.4f)", (long long)(step + 1), val, s.loss);
        progress->note(line);
      }
    }
    if (saving) save(step + 1);
    if (stopping && !last) {
      if (progress) progress->finish();
      if (writer)
        host.warn(rt::stopped_message(stopping, step + 1));
      return rt::kExitStoppedResumable;
    }
  }
  if (progress) progress->finish();

  if (writer && !o.sample_prompt.empty() && o.sample_tokens > 0) {
    rt::SamplingOptions so;
    so.max_new_tokens = o.sample_tokens;
    so.temperature = 0.8f;
    so.top_k = 40;
    so.seed = o.seed;
    if (auto eod = tok.token_to_id("<|endoftext|>")) so.stop_tokens.push_back(*eod);
    // Under expert parallel every forward is collective, and rank 0 samples alone: it samples
    // from the whole model the last checkpoint holds.
    std::unique_ptr<rt::NemotronH> whole;
    if (model.expert_comm()) whole = rt::load_pretrained(ckpts.latest()->string());
    auto out = rt::generate(whole ? *whole : model, {tok.encode(o.sample_prompt)}, so);
    std::string text = o.sample_prompt + tok.decode_generated(out[0], /*skip_special=*/true);
    host.info("sample: " + text);
    metrics->write({{"step", state.step > o.max_steps ? state.step : o.max_steps}, {"sample", text}});
  }
  return 0;
}

}  // namespace nemokit::pretrain
