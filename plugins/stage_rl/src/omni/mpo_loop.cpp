#include "omni/mpo_loop.hpp"

#include "grpo/rank_share.hpp"
#include "model/init_model.hpp"
#include "mpo/mpo_math.hpp"
#include "mpo/running_reward_mean.hpp"
#include "omni/media_items.hpp"
#include "omni/mpo_pairs.hpp"
#include "prep/rl_data_prep.hpp"
#include "train/pack_batches.hpp"

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/run/frozen_prefixes.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/resume_check.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/rank0_checkpoint.hpp"
#include "nemokit/runtime/run/optimizer_options.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/stop_signal.hpp"
#include "nemokit/runtime/run/table_reader.hpp"
#include "nemokit/runtime/run/train_device.hpp"
#include "nemokit/runtime/grad_sync.hpp"
#include "nemokit/runtime/trainer.hpp"

#include <chrono>
#include <fstream>
#include <optional>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct MpoRunOptions {
  MpoOptions loss;
  int64_t max_steps = 0, pairs_per_step = 8, micro_batch_size = 8;
  rt::OptimizerOptions optim = [] {
    rt::OptimizerOptions o;
    o.lr = 2e-6, o.min_lr = 2e-6, o.schedule = "constant", o.weight_decay = 0.0;
    return o;
  }();
  std::vector<std::string> frozen;
  rt::Device device = rt::Device::cpu;  // where the policy's passes and steps run (rt::read_train_device)
  uint64_t seed = 1234;
  int64_t eval_interval = 0, save_interval = 0, log_interval = 1, eval_max_pairs = 200;
  fs::path checkpoint_dir;
  bool resume = true;
  int64_t keep_checkpoints = 2;

  static MpoRunOptions from_config(const json& config) {
    MpoRunOptions o;
    if (config.contains("mpo")) {
      rt::TableReader m(config["mpo"], "mpo");
      m.number("beta", o.loss.beta);
      m.number("sigmoid_weight", o.loss.sigmoid_weight);
      m.number("bco_weight", o.loss.bco_weight);
      m.number("sft_weight", o.loss.sft_weight);
      m.number("label_smoothing", o.loss.label_smoothing);
      m.no_unknown_keys();
    }
    o.loss.validate();
    if (!config.contains("train")) throw std::invalid_argument("train: the table is missing");
    rt::TableReader t(config["train"], "train");
    t.integer("max_steps", o.max_steps, 1);
    t.integer("pairs_per_step", o.pairs_per_step, 1);
    t.integer("micro_batch_size", o.micro_batch_size, 1);
    o.optim.read(t);
    t.strings("frozen", o.frozen);
    o.device = rt::read_train_device(t);
    int64_t seed = int64_t(o.seed);
    t.integer("seed", seed, 0);
    o.seed = uint64_t(seed);
    t.integer("eval_interval", o.eval_interval, 0);
    t.integer("save_interval", o.save_interval, 0);
    t.integer("log_interval", o.log_interval, 1);
    t.no_unknown_keys();
    if (o.max_steps == 0) t.fail("max_steps", "required");
    if (config.contains("eval")) {
      rt::TableReader e(config["eval"], "eval");
      e.integer("max_pairs", o.eval_max_pairs, 0);
      e.no_unknown_keys();
    }
    rt::read_checkpoint_table(config, o.checkpoint_dir, o.resume, o.keep_checkpoints);
    return o;
  }
};

// A pair as two samples (chosen, rejected) over the same prompt and media.
struct PairSamples {
  Sample chosen, rejected;
  double ref_c = 0, ref_r = 0;
};

std::vector<PairSamples> load_pairs(const fs::path& file, const rt::Tokenizer& tok, const sft::MediaOptions& media,
                                    int64_t max_pairs) {
  std::vector<PairSamples> out;
  const std::vector<json> records = read_tasks(file);
  const int32_t end = tok.token_to_id("<|im_end|>").value_or(-1);
  for (size_t i = 0; i < records.size() && (max_pairs <= 0 || int64_t(out.size()) < max_pairs); ++i) {
    const json& r = records[i];
    const std::string where = file.string() + ":" + std::to_string(i + 1);
    // A rejected answer may be empty (the model ended its turn at once); a chosen one may not.
    if (!r.contains("chosen") || !r["chosen"].is_string() || r["chosen"].get<std::string>().empty())
      throw std::invalid_argument(where + ": \"chosen\" must be a non-empty answer text");
    if (!r.contains("rejected") || !r["rejected"].is_string())
      throw std::invalid_argument(where + ": \"rejected\" must be an answer text");
    PairSamples p;
    p.chosen.prompt = render_prompt(r, tok, false, where);
    p.chosen.media = sft::prompt_media(p.chosen.prompt, r, file.parent_path(), media, tok, where);
    p.rejected.prompt = p.chosen.prompt;
    p.rejected.media = p.chosen.media;
    p.chosen.response = tok.encode(r["chosen"].get<std::string>());
    p.rejected.response = tok.encode(r["rejected"].get<std::string>());
    if (end >= 0) p.chosen.response.push_back(end), p.rejected.response.push_back(end);
    out.push_back(std::move(p));
  }
  return out;
}

double sum_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s;
}

// Summed answer log-probs of both sides of `pairs` under `model` (on `device` when given).
void score_pairs(rt::NemotronH& model, const std::vector<PairSamples*>& pairs, int64_t micro, std::vector<double>& lp_c,
                 std::vector<double>& lp_r, rt::DeviceScorer* device = nullptr) {
  std::vector<const Sample*> all;
  for (PairSamples* p : pairs) all.push_back(&p->chosen), all.push_back(&p->rejected);
  TokenScores s = score_samples(model, all, micro, false, device);
  lp_c.clear(), lp_r.clear();
  for (size_t i = 0; i < pairs.size(); ++i) lp_c.push_back(sum_of(s.lp[2 * i])), lp_r.push_back(sum_of(s.lp[2 * i + 1]));
}

std::vector<PreferencePair> preference_pairs(const std::vector<PairSamples*>& pairs, const std::vector<double>& lp_c,
                                             const std::vector<double>& lp_r) {
  std::vector<PreferencePair> out;
  for (size_t i = 0; i < pairs.size(); ++i)
    out.push_back({lp_c[i], lp_r[i], pairs[i]->ref_c, pairs[i]->ref_r, int64_t(pairs[i]->chosen.response.size())});
  return out;
}

}  // namespace

int run_mpo(const json& config, const fs::path& job_dir, const RewardFn& reward_of, const StageLog& host) {
  MpoRunOptions o = MpoRunOptions::from_config(config);
  if (o.checkpoint_dir.empty()) o.checkpoint_dir = job_dir / "checkpoints";
  rt::require_train_device(o.device);
  // Data parallel over the job's ranks: each scores and trains its block of every step's pairs
  // (and of the held-out pairs); the loss terms are the whole batch's, the gradients summed.
  std::unique_ptr<rt::Communicator> comm = rt::open_job_communicator(config);
  const rt::ParallelOptions par = rt::read_parallel_table(config, comm->size());
  const rt::DataSlice slice = rt::data_parallel_slice(o.pairs_per_step, par.dp, comm->rank(), "train.pairs_per_step");
  const bool writer = comm->rank() == 0;  // rank 0 alone writes checkpoints, metrics and progress
  const sft::InitModel init = sft::resolve_init_model(config, job_dir);
  RlPrepConfig c = RlPrepConfig::from_config(config, job_dir);
  // Rank 0 makes missing pairs while the others wait, so no two ranks write the same files.
  if (writer && !fs::exists(c.output / "metadata.json")) {
    host.info("no MPO pairs in " + c.output.string() + ": making them now (nemokit data prep)");
    prepare_mpo_data(config, job_dir, reward_of, host);
  }
  comm->wait_for_ranks(rt::rank0_work_timeout());  // however long rank 0 prepares
  const json manifest = json::parse(std::ifstream(c.output / "manifest.json"));

  rt::Tokenizer tok = rt::Tokenizer::load(init.tokenizer);
  // Expert parallel: each rank holds its share of the routed experts; every rank of a group
  // runs the same number of forwards (its block of each step's pairs; all held-out pairs).
  if (par.ep > 1) rt::check_expert_parallel(par, rt::NemotronHConfig::load((init.dir / "config.json").string()));
  rt::Communicator* experts = rt::expert_parallel_comm(par, *comm);
  std::unique_ptr<rt::NemotronH> model = rt::load_pretrained(init.dir.string(), experts, int(par.ep));
  std::unique_ptr<rt::NemotronH> reference = rt::load_pretrained(init.dir.string(), experts, int(par.ep));
  rt::set_frozen_prefixes(*model, o.frozen, true, "train.frozen");
  const sft::MediaOptions media = sft::MediaOptions::for_model(config, *model);
  std::vector<PairSamples> train = load_pairs(manifest.at("train").get<std::string>(), tok, media, 0);
  std::vector<PairSamples> val = load_pairs(manifest.at("val").get<std::string>(), tok, media, o.eval_max_pairs);
  if (train.empty()) throw std::invalid_argument(manifest["train"].get<std::string>() + ": no pairs");
  // Held-out pairs: a block per rank, or under expert parallel all of them on every rank (the
  // blocks may differ by one pair, and so would the ranks' forwards).
  const RankBlock val_slice = par.ep > 1 ? RankBlock{0, int64_t(val.size())} : rank_block(int64_t(val.size()), par.dp, comm->rank());

  rt::AdamW optimizer = rt::make_optimizer(model->parameters(), o.optim.adamw(), par, *comm);
  const rt::LrSchedule sched = o.optim.lr_schedule(o.max_steps);
  sft::PackSampler sampler(int64_t(train.size()), o.seed);
  fs::create_directories(o.checkpoint_dir);
  rt::CheckpointDir ckpts(o.checkpoint_dir, o.keep_checkpoints);
  rt::TrainerState state;
  const json data_now = rt::describe_data(c.output);
  RunningRewardMean delta;
  bool resumed = false;
  if (o.resume)
    if (auto last = ckpts.latest()) {
      state = rt::load_training_checkpoint(last->string(), *model, optimizer);
      rt::check_same_data(state.data_source, data_now, last->string());
      sampler.restore(state.data_position);
      if (state.extra.contains("bco_delta")) delta = RunningRewardMean::from_json(state.extra["bco_delta"]);
      resumed = true;
      if (writer) host.info("resumed from " + last->string() + " at step " + std::to_string(state.step));
    }
  if (writer && !fs::exists(o.checkpoint_dir / "tokenizer.json")) tok.save(o.checkpoint_dir / "tokenizer.json");
  state.data_source = data_now;  // what every checkpoint of this run was trained on

  std::optional<rt::MetricsLog> metrics;
  std::optional<rt::Progress> progress;
  if (writer) {
    metrics.emplace(job_dir / "metrics.jsonl");
    progress.emplace("step", o.max_steps, o.log_interval);
  }
  rt::TrainOptions to;
  to.max_grad_norm = o.optim.grad_clip;
  to.expert_bias_rate = 0;  // MPO leaves the router biases as the SFT model set them
  to.comm = comm.get();
  // On cuda the weights and moments live on the GPU from here; checkpoints sync the CPU model.
  rt::TrainStepper stepper(o.device, *model, optimizer, to);
  rt::DeviceTrainer* device = stepper.gpu();
  // The reference's log-probs never change: once, up front (on cuda through its own bf16 copy,
  // so that the policy at the start has a margin of 0 to it, as on the CPU).
  {
    std::unique_ptr<rt::DeviceScorer> reference_on_device = rt::open_device_scorer(o.device, *reference);
    for (auto* set : {&train, &val}) {
      std::vector<PairSamples*> all;
      for (auto& p : *set) all.push_back(&p);
      std::vector<double> rc, rr;
      score_pairs(*reference, all, o.micro_batch_size, rc, rr, reference_on_device.get());
      for (size_t i = 0; i < all.size(); ++i) all[i]->ref_c = rc[i], all[i]->ref_r = rr[i];
    }
  }
  reference.reset();
  rt::StopSignal stop;
  if (writer)
    host.info("MPO from " + init.dir.string() + " (" + init.origin + "): " + std::to_string(train.size()) + " train and " +
            std::to_string(val.size()) + " held-out pairs, " + std::to_string(o.max_steps) + " steps of " +
            std::to_string(o.pairs_per_step) + " pairs" + rt::describe_layout(par, *comm) +
            (o.device == rt::Device::cuda ? ", on cuda" : "") + "; checkpoints in " + o.checkpoint_dir.string());

  auto evaluate = [&](int64_t step) {
    if (val.empty()) return;
    std::vector<PairSamples*> all;
    for (int64_t i = val_slice.first; i < val_slice.first + val_slice.count; ++i) all.push_back(&val[size_t(i)]);
    std::vector<double> lc, lr;
    score_pairs(*model, all, o.micro_batch_size, lc, lr, device);
    double sums[3] = {0, 0, 0};  // margin, log-prob margin, pairs preferring the chosen answer
    for (size_t i = 0; i < all.size(); ++i) {
      const double m = (lc[i] - all[i]->ref_c) - (lr[i] - all[i]->ref_r);
      sums[0] += m, sums[1] += lc[i] - lr[i], sums[2] += lc[i] > lr[i];
    }
    if (comm->size() > 1 && par.ep == 1) comm->all_reduce_sum(sums, 3);
    if (!writer) return;
    const double margin = sums[0], logp_margin = sums[1], right = sums[2];
    const double n = double(val.size());
    metrics->write({{"step", step}, {"val_reward_margin", o.loss.beta * margin / n}, {"val_logp_margin", logp_margin / n},
                   {"val_preference_accuracy", right / n}});
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld: held-out chosen-rejected log-prob margin %.3f | prefers chosen %.3f | reward margin %.4f",
                  (long long)step, logp_margin / n, right / n, o.loss.beta * margin / n);
    progress->note(buf);
  };
  auto save = [&](int64_t step) {
    state.step = step;
    state.data_position = sampler.position();
    state.extra["bco_delta"] = delta.to_json();
    stepper.sync_to_host();
    const fs::path written = rt::save_on_rank0(ckpts, step, *model, optimizer, state, &tok, *comm);
    if (writer) progress->note("checkpoint step " + std::to_string(step) + " -> " + written.string());
  };
  if (!resumed && state.step == 0) evaluate(0);
  if (writer && state.step >= o.max_steps) host.info(ckpts.complete_message(state.step));

  for (int64_t step = state.step; step < o.max_steps; ++step) {
    const auto t0 = Clock::now();
    // Every rank draws the step's pairs alike and scores its block; the loss terms need them all.
    std::vector<PairSamples*> step_pairs, batch;
    for (int64_t i : sampler.next(o.pairs_per_step)) step_pairs.push_back(&train[size_t(i)]);
    batch.assign(step_pairs.begin() + slice.first, step_pairs.begin() + slice.first + slice.count);
    std::vector<double> lc, lr;
    score_pairs(*model, batch, o.micro_batch_size, lc, lr, device);
    const size_t first = size_t(slice.first);
    std::vector<size_t> places(batch.size());
    for (size_t i = 0; i < places.size(); ++i) places[i] = first + i;
    lc = values_of_all_ranks(*comm, step_pairs.size(), places, lc);
    lr = values_of_all_ranks(*comm, step_pairs.size(), places, lr);
    const MpoBatch mb = mpo_batch(preference_pairs(step_pairs, lc, lr), o.loss, delta);
    // lp = -sum of the answer's token cross-entropies: a token's loss weight is -dL/dlp.
    // On the CPU this rank's gradients are summed in double (GradientSum); on cuda on the device.
    std::optional<rt::GradientSum> grads;
    if (device) {
      device->zero_grad();
    } else {
      model->zero_grad();
      grads.emplace(model->parameters());
    }
    // Expert parallel: each source rank's share of an expert's gradient into the sums as it is made.
    if (experts) model->set_gradient_flush([&grads](const std::vector<rt::Parameter*>& ps) { grads->add_and_clear(ps); });
    for (size_t b = 0; b < batch.size(); b += size_t(std::max<int64_t>(1, o.micro_batch_size / 2))) {
      std::vector<const Sample*> part;
      std::vector<double> weight;
      for (size_t i = b; i < std::min(batch.size(), b + size_t(std::max<int64_t>(1, o.micro_batch_size / 2))); ++i) {
        part.push_back(&batch[i]->chosen), weight.push_back(-mb.grad_chosen[first + i]);
        part.push_back(&batch[i]->rejected), weight.push_back(-mb.grad_rejected[first + i]);
      }
      rt::Batch rb = make_sample_batch(part);
      rb.loss_weights.assign(rb.input_ids.size(), 0.0f);
      for (size_t r = 0; r < part.size(); ++r)
        for (size_t k = 0; k < part[r]->response.size(); ++k)
          rb.loss_weights[r * rb.seq + part[r]->prompt.size() - 1 + k] = float(weight[r]);
      if (device) {
        device->accumulate(rb, rt::LossOptions{});
      } else {
        model->forward_backward(rb, rt::LossOptions{}, /*backward=*/true);
        grads->add_and_clear();
      }
    }
    model->set_gradient_flush(nullptr);
    const float lr_now = sched.lr(step);
    const double grad_norm =
        device ? device->apply_gradients(lr_now) : rt::apply_gradients(*model, optimizer, lr_now, &*grads, to);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const MpoTerms& t = mb.mean;
    if (writer)
      metrics->write({{"step", step + 1}, {"loss", t.loss}, {"sigmoid_loss", t.sigmoid_loss}, {"bco_loss", t.bco_loss},
                   {"sft_loss", t.sft_loss}, {"reward_margin", t.margin}, {"reward_accuracy", t.accuracy},
                   {"chosen_reward", t.chosen_reward}, {"rejected_reward", t.rejected_reward}, {"bco_delta", mb.delta},
                   {"grad_norm", grad_norm}, {"lr", lr_now}, {"step_seconds", secs}});
    char loss_text[32];
    std::snprintf(loss_text, sizeof loss_text, "loss %.4f", t.loss);
    if (writer) progress->update(step + 1, loss_text);
    const bool last = step + 1 == o.max_steps;
    if ((o.eval_interval > 0 && (step + 1) % o.eval_interval == 0) || last) evaluate(step + 1);
    const int stopping = rt::stop_on_any_rank(stop, *comm);  // the signal, 0: none
    if ((o.save_interval > 0 && (step + 1) % o.save_interval == 0) || last || stopping) save(step + 1);
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

}  // namespace nemokit::rl
