#include "train/sft_loop.hpp"

#include "data/packed_split.hpp"
#include "model/init_model.hpp"
#include "omni/omni_model.hpp"
#include "prep/sft_data_prep.hpp"
#include "train/generation_eval.hpp"
#include "train/pack_batches.hpp"
#include "train/sft_options.hpp"

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/run/frozen_prefixes.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/resume_check.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/rank0_checkpoint.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/stop_signal.hpp"
#include "nemokit/runtime/sha256.hpp"
#include "nemokit/runtime/tokenizer.hpp"
#include "nemokit/runtime/trainer.hpp"

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>

namespace nemokit::sft {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

SftPrepConfig prep_config_of(const json& config, const fs::path& job_dir) {
  SftPrepConfig c = SftPrepConfig::from_config(config);
  if (c.output.empty()) c.output = job_dir / "data";
  return c;
}

json read_metadata(const fs::path& dir) {
  std::ifstream in(dir / "metadata.json");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error((dir / "metadata.json").string() + ": not valid JSON: " + e.what());
  }
}

// The prepared data, made now if absent; its ids must come from the model's tokenizer `tok`
// (omni3: the one with the media tokens, which data prep adds the same way).
fs::path ensure_data(const json& config, const fs::path& job_dir, const InitModel& init, const rt::Tokenizer& tok,
                     const StageLog& host) {
  SftPrepConfig c = prep_config_of(config, job_dir);
  if (!fs::exists(c.output / "metadata.json")) {
    host.info("no prepared SFT data in " + c.output.string() + ": preparing it now (nemokit data prep)");
    run_sft_data_prep(c, c.tokenizer.empty() ? init.tokenizer : c.tokenizer, c.output, std::cerr);
  }
  json meta = read_metadata(c.output);
  if (meta.value("type", "") != "SFTDataArtifact")
    throw std::invalid_argument("data.output: " + c.output.string() + " holds no SFT data (metadata type \"" +
                                meta.value("type", "") + "\")");
  if (tok.to_json() != rt::Tokenizer::load(c.output / "tokenizer.json").to_json())
    throw std::invalid_argument("data.output: " + c.output.string() + " was prepared with another tokenizer than the model's (" +
                                init.tokenizer.string() +
                                "); prepare it again (remove the folder, or set data.output elsewhere)");
  return c.output;
}

double validation_loss(rt::NemotronH& model, const PackedSplit& val, const SftOptions& o) {
  const int64_t packs = o.eval_steps > 0 ? std::min(val.packs(), o.eval_steps * o.micro_batch_size) : val.packs();
  double loss = 0;
  int64_t tokens = 0;
  for (int64_t p = 0; p < packs; p += o.micro_batch_size) {
    std::vector<int64_t> rows;
    for (int64_t q = p; q < std::min(packs, p + o.micro_batch_size); ++q) rows.push_back(q);
    int32_t next_doc = 0;
    rt::StepResult r = model.forward_backward(make_pack_batch(val, rows, next_doc), rt::LossOptions{}, /*backward=*/false);
    loss += r.loss_sum;
    tokens += r.tokens;
  }
  return tokens ? loss / double(tokens) : 0.0;
}

void add_lora(rt::NemotronH& model, const SftOptions& o) {
  rt::LoraConfig lc;
  lc.rank = o.lora_rank;
  lc.alpha = float(o.lora_alpha);
  lc.dropout = float(o.lora_dropout);
  lc.targets = o.lora_targets;
  lc.seed = o.seed;
  model.add_lora(lc);
}

// train.train_only (all else frozen), train.frozen, then train.trained.
void apply_freezing(rt::NemotronH& model, const SftOptions& o) {
  if (!o.train_only.empty()) model.set_frozen("", true);
  rt::set_frozen_prefixes(model, o.train_only, false, "train.train_only");
  rt::set_frozen_prefixes(model, o.frozen, true, "train.frozen");
  rt::set_frozen_prefixes(model, o.trained, false, "train.trained");
}

}  // namespace

fs::path prepare_sft_data(const json& config, const fs::path& job_dir, const StageLog& host) {
  SftPrepConfig c = prep_config_of(config, job_dir);
  fs::path tokenizer = c.tokenizer;
  if (tokenizer.empty()) {
    InitModel init = resolve_init_model(config, job_dir);
    host.info("tokenizer: " + init.tokenizer.string() + " (from the model to fine-tune, " + init.origin + ")");
    tokenizer = init.tokenizer;
  }
  run_sft_data_prep(c, tokenizer, c.output, std::cerr);
  return c.output;
}

int run_sft(const json& config, const fs::path& job_dir, const StageLog& host) {
  SftOptions o = SftOptions::from_config(config);
  if (o.checkpoint_dir.empty()) o.checkpoint_dir = job_dir / "checkpoints";
  rt::require_train_device(o.device);
  // Data parallel over the job's ranks (several start under mpirun): see plugins/stage_pretrain.
  std::unique_ptr<rt::Communicator> comm = rt::open_job_communicator(config);
  const rt::ParallelOptions par = rt::read_parallel_table(config, comm->size());
  InitModel init = resolve_init_model(config, job_dir);
  const MediaOptions media = MediaOptions::from_config(config);
  rt::Tokenizer tok = rt::Tokenizer::load(init.tokenizer);
  // Expert parallel: each rank holds its share of the routed experts, loaded from the whole set.
  // Every rank runs the same evaluations, so their forwards (and the exchange in them) pair up.
  if (par.ep > 1) {
    rt::check_expert_parallel(par, rt::NemotronHConfig::load((init.dir / "config.json").string()));
    if (o.lora)
      throw std::invalid_argument("lora.enabled: LoRA adapters on experts split over ranks (parallel.ep = " +
                                  std::to_string(par.ep) + ") are not available; set parallel.ep = 1 for LoRA");
  }
  std::unique_ptr<rt::NemotronH> model =
      rt::load_pretrained(init.dir.string(), rt::expert_parallel_comm(par, *comm), int(par.ep));
  if (int added = prepare_omni_model(model, tok, media, o.seed))
    host.info("omni model: " + std::to_string(added) + " encoder(s) added to " + init.dir.string() + ", vocab " +
              std::to_string(model->config().vocab_size) + " with the media tokens");
  if (tok.vocab_size() > model->config().vocab_size)
    throw std::invalid_argument(init.tokenizer.string() + ": " + std::to_string(tok.vocab_size()) +
                                " ids do not fit the model's vocab_size " + std::to_string(model->config().vocab_size));
  const rt::DataSlice slice = rt::data_parallel_slice(o.accumulation_steps(), par.dp, comm->rank(), "train.global_batch_size");
  const bool writer = comm->rank() == 0;  // rank 0 alone writes checkpoints, metrics and progress
  // Rank 0 prepares missing data while the others wait, so no two ranks write the same files.
  fs::path data_dir;
  if (writer) data_dir = ensure_data(config, job_dir, init, tok, host);
  comm->wait_for_ranks(rt::rank0_work_timeout());  // however long rank 0 prepares
  if (!writer) data_dir = ensure_data(config, job_dir, init, tok, host);
  const PackedSplit train = PackedSplit::read(data_dir / "train");
  PackedSplit val;
  if (fs::exists(data_dir / "validation")) val = PackedSplit::read(data_dir / "validation");
  const bool enable_thinking = config["data"].value("enable_thinking", true);
  std::vector<EvalExample> examples;
  if (!o.eval_file.empty())
    examples = load_eval_examples(o.eval_file, tok, enable_thinking, o.eval_max_examples, media.enabled() ? &media : nullptr);

  if (o.lora) add_lora(*model, o);
  apply_freezing(*model, o);
  int64_t trainable = 0, total = 0;
  for (rt::Parameter* p : model->parameters()) {
    if (p->buffer) continue;
    total += p->value.numel();
    if (p->trainable) trainable += p->value.numel();
  }
  rt::AdamW optimizer = rt::make_optimizer(model->parameters(), o.optim.adamw(), par, *comm);
  const rt::LrSchedule sched = o.optim.lr_schedule(o.max_steps);

  PackSampler sampler(train.packs(), o.seed);
  fs::create_directories(o.checkpoint_dir);
  rt::CheckpointDir ckpts(o.checkpoint_dir, o.keep_checkpoints);
  rt::TrainerState state;
  const json data_now = rt::describe_data(data_dir);
  bool resumed = false;
  if (o.resume) {
    if (auto last = ckpts.latest()) {
      state = rt::load_training_checkpoint(last->string(), *model, optimizer);
      rt::check_same_data(state.data_source, data_now, last->string());
      sampler.restore(state.data_position);
      resumed = true;
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
  const int64_t accum = o.accumulation_steps();
  if (writer)
    host.info(std::string(o.lora ? "LoRA" : "full") + " fine-tuning of " + init.dir.string() + " (from " + init.origin +
              "): " + std::to_string(trainable) + " of " + std::to_string(total) + " parameters trained; " +
              std::to_string(train.packs()) + " packs of " + std::to_string(train.pack_size) + " tokens, " +
              std::to_string(o.max_steps) + " steps of " + std::to_string(o.global_batch_size) + " packs" +
              rt::describe_layout(par, *comm) + (o.device == rt::Device::cuda ? " on cuda" : "") + "; checkpoints in " +
              o.checkpoint_dir.string());

  auto evaluate = [&](int64_t step) {
    json m = {{"step", step}};
    std::string line = "step " + std::to_string(step) + ":";
    if (val.packs() > 0) {
      double v = validation_loss(*model, val, o);
      m["val_loss"] = v;
      char buf[48];
      std::snprintf(buf, sizeof buf, " val_loss %.4f", v);
      line += buf;
    }
    if (!examples.empty()) {
      EvalReport r = run_generation_eval(*model, tok, examples, o.eval_max_new_tokens);
      m["exact_match"] = r.to_json();
      for (const auto& [kind, c] : r.per_kind) {
        char buf[96];
        std::snprintf(buf, sizeof buf, " | %s %lld/%lld", kind.c_str(), (long long)c.first, (long long)c.second);
        line += buf;
      }
      if (step == o.max_steps) {
        json samples = json::array();
        std::map<std::string, int64_t> shown;
        for (const EvalAnswer& a : r.answers) {
          if (shown[a.example->kind]++ >= o.eval_samples) continue;
          samples.push_back({{"kind", a.example->kind},
                             {"prompt", tok.decode(a.example->prompt)},
                             {"answer", a.answer},
                             {"expected", a.example->expected},
                             {"correct", a.correct}});
          if (writer)
            progress->note("  [" + a.example->kind + "] " + a.answer +
                           (a.correct ? "  (correct)" : "  (expected: " + a.example->expected + ")"));
        }
        m["samples"] = samples;
      }
    }
    // Every rank evaluates the same examples (no collective inside); rank 0 reports.
    if (writer) {
      metrics->write(m);
      progress->note(line);
    }
  };

  auto save = [&](int64_t step) {
    state.step = step;
    state.data_position = sampler.position();
    const fs::path written = rt::save_on_rank0(ckpts, step, *model, optimizer, state, &tok, *comm);
    if (writer) progress->note("checkpoint step " + std::to_string(step) + " -> " + written.string());
  };

  if (!resumed && state.step == 0 && (val.packs() > 0 || !examples.empty())) evaluate(0);
  if (writer && state.step >= o.max_steps) host.info(ckpts.complete_message(state.step));

  rt::TrainOptions to;
  to.max_grad_norm = o.optim.grad_clip;
  to.expert_bias_rate = float(o.moe_bias_update_rate);
  to.moe_aux_loss_coeff = float(o.moe_aux_loss_coeff);
  to.comm = comm.get();
  to.global_micro_batches = accum;
  // From here the weights and moments live where the steps run; the CPU model is brought up to
  // date before evaluations and checkpoints read it.
  rt::TrainStepper stepper(o.device, *model, optimizer, to);
  for (int64_t step = state.step; step < o.max_steps; ++step) {
    auto t0 = Clock::now();
    std::vector<rt::Batch> micro;
    int32_t next_doc = 0;
    for (int64_t a = 0; a < accum; ++a) micro.push_back(make_pack_batch(train, sampler.next(o.micro_batch_size), next_doc));
    // The loss weights need the whole global batch (token counts); then each rank keeps its slice.
    const int64_t trained_tokens = set_loss_weights(micro, o.loss_normalization);
    micro = std::vector<rt::Batch>(micro.begin() + slice.first, micro.begin() + slice.first + slice.count);
    const float lr = sched.lr(step);
    rt::TrainStepStats s = stepper.step(lr, micro);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double tps = double(o.global_batch_size * train.pack_size) / secs;
    if (writer) {
      metrics->write({{"step", step + 1},
                      {"loss", s.loss},
                      {"lr", lr},
                      {"grad_norm", s.grad_norm},
                      {"tokens_per_s", tps},
                      {"trained_tokens", trained_tokens},
                      {"epoch", sampler.epoch()}});
      progress->update(step + 1, rt::training_detail(s.loss, tps));
    }

    const bool last = step + 1 == o.max_steps;
    const bool evaluating = (o.eval_interval > 0 && (step + 1) % o.eval_interval == 0) || last;
    const int stopping = rt::stop_on_any_rank(stop, *comm);  // the signal, 0: none
    const bool saving = (o.save_interval > 0 && (step + 1) % o.save_interval == 0) || last || stopping;
    if (evaluating || saving) stepper.sync_to_host();
    if (evaluating) evaluate(step + 1);
    if (saving) save(step + 1);
    if (stopping && !last) {
      if (progress) progress->finish();
      if (writer)
        host.warn(rt::stopped_message(stopping, step + 1));
      return rt::kExitStoppedResumable;
    }
  }
  if (progress) progress->finish();
  return 0;
}

}  // namespace nemokit::sft
