#include "grpo/grpo_loop.hpp"

#include "grpo/grpo_options.hpp"
#include "grpo/rank_share.hpp"
#include "grpo/task_eval.hpp"
#include "model/init_model.hpp"
#include "omni/media_items.hpp"
#include "prep/rl_data_prep.hpp"
#include "train/pack_batches.hpp"

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/run/frozen_prefixes.hpp"
#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/run/checkpoint_dir.hpp"
#include "nemokit/runtime/run/resume_check.hpp"
#include "nemokit/runtime/progress.hpp"
#include "nemokit/runtime/run/metrics_log.hpp"
#include "nemokit/runtime/run/rank0_checkpoint.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "nemokit/runtime/run/stop_signal.hpp"
#include "nemokit/runtime/run/train_device.hpp"
#include "nemokit/runtime/json_file.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

namespace nemokit::rl {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The split files of the prepared data (made now when absent).
json ensure_data(const json& config, const fs::path& job_dir, const StageLog& host) {
  RlPrepConfig c = RlPrepConfig::from_config(config, job_dir);
  if (!fs::exists(c.output / "metadata.json")) {
    host.info("no prepared RL data in " + c.output.string() + ": preparing it now (nemokit data prep)");
    run_rl_data_prep(c, c.output, std::cerr);
  }
  json meta = rt::read_json_file(c.output / "metadata.json");
  if (meta.value("type", "") != "SplitJsonlDataArtifact")
    throw std::invalid_argument("data.output: " + c.output.string() + " holds no RL task splits (metadata type \"" +
                                meta.value("type", "") + "\")");
  json manifest = rt::read_json_file(c.output / "manifest.json");
  for (const char* split : {"train", "val"})
    if (!manifest.contains(split) || !manifest[split].is_string())
      throw std::invalid_argument((c.output / "manifest.json").string() + ": \"" + split + "\" must name the split's file");
  return manifest;
}

std::vector<const json*> pointers(const std::vector<json>& tasks, const std::vector<int64_t>& idx) {
  std::vector<const json*> out;
  for (int64_t i : idx) out.push_back(&tasks[size_t(i)]);
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

// The question a sample answered, for the end-of-run samples: a prompt is a string or messages.
std::string last_user_text(const json& prompt) {
  if (prompt.is_string()) return prompt.get<std::string>();
  if (!prompt.is_array() || prompt.empty()) return "";
  const json& content = prompt.back().value("content", json());
  return content.is_string() ? content.get<std::string>() : content.dump();
}

}  // namespace

fs::path prepare_rl_data(const json& config, const fs::path& job_dir, const StageLog&) {
  RlPrepConfig c = RlPrepConfig::from_config(config, job_dir);
  run_rl_data_prep(c, c.output, std::cerr);
  return c.output;
}

int run_grpo(const json& config, const fs::path& job_dir, const RewardFn& reward_of, const StageLog& host,
             const RolloutFn& rollout_of, rt::Communicator* comm) {
  GrpoOptions o = GrpoOptions::from_config(config);
  if (o.checkpoint_dir.empty()) o.checkpoint_dir = job_dir / "checkpoints";
  rt::require_train_device(o.device);
  std::unique_ptr<rt::Communicator> own_comm;
  if (!comm) own_comm = rt::open_job_communicator(config), comm = own_comm.get();
  const rt::ParallelOptions par = rt::read_parallel_table(config, comm->size());
  const RankShare share = rank_share(o, par.dp, comm->rank());
  const bool writer = comm->rank() == 0;  // rank 0 alone writes checkpoints, metrics and progress
  const sft::InitModel init = sft::resolve_init_model(config, job_dir);
  // Rank 0 prepares missing data while the others wait, so no two ranks write the same files.
  json manifest;
  if (writer) manifest = ensure_data(config, job_dir, host);
  comm->wait_for_ranks(rt::rank0_work_timeout());  // however long rank 0 prepares
  if (!writer) manifest = ensure_data(config, job_dir, host);
  const std::vector<json> train = read_tasks(manifest["train"].get<std::string>());
  std::vector<json> val = read_tasks(manifest["val"].get<std::string>());
  if (o.eval_max_tasks >= 0 && int64_t(val.size()) > o.eval_max_tasks) val.resize(size_t(o.eval_max_tasks));
  // Every environment the tasks name must exist before any work: one task of each distinct
  // "environment" is scored once (an unknown name throws, listing the known ones).
  std::set<std::string> seen;
  for (const std::vector<json>* split : {&train, static_cast<const std::vector<json>*>(&val)})
    for (const json& t : *split)
      if (seen.insert(t["environment"].dump()).second) reward_of(t, "");

  rt::Tokenizer tok = rt::Tokenizer::load(init.tokenizer);
  // Expert parallel: each rank holds its share of the routed experts (the policy's and the
  // reference's). Generation steps all ranks together (rt::generate), and every rank scores and
  // trains the same number of micro-batches, so the exchanges pair up.
  if (par.ep > 1) rt::check_expert_parallel(par, rt::NemotronHConfig::load((init.dir / "config.json").string()));
  rt::Communicator* experts = rt::expert_parallel_comm(par, *comm);
  std::unique_ptr<rt::NemotronH> model = rt::load_pretrained(init.dir.string(), experts, int(par.ep));
  if (tok.vocab_size() > model->config().vocab_size)
    throw std::invalid_argument(init.tokenizer.string() + ": " + std::to_string(tok.vocab_size()) +
                                " ids do not fit the model's vocab_size " + std::to_string(model->config().vocab_size));
  rt::set_frozen_prefixes(*model, o.frozen, true, "train.frozen");
  // The reference policy of the KL term: the starting model, frozen.
  std::unique_ptr<rt::NemotronH> reference;
  if (o.surrogate.kl_beta > 0) reference = rt::load_pretrained(init.dir.string(), experts, int(par.ep));

  // omni3 tasks: their images, videos and audio (copied into the data folder by data prep) go
  // through the model's own encoders; tile and audio settings from [data.media].
  const sft::MediaOptions media = sft::MediaOptions::for_model(config, *model);
  const fs::path data_dir = fs::path(manifest["train"].get<std::string>()).parent_path();
  auto media_of = [&](const json& task, std::vector<int32_t>& ids, const std::string& where) {
    return sft::prompt_media(ids, task, data_dir, media, tok, where);
  };

  std::vector<int32_t> stop_tokens;
  std::vector<std::string> stop_strings;
  split_stop_strings(tok, o.stop_strings, stop_tokens, stop_strings);
  auto prompt_of = [&](const json& task, const std::string& where) {
    return render_prompt(task, tok, o.enable_thinking, where);
  };

  rt::AdamW optimizer = rt::make_optimizer(model->parameters(), o.optim.adamw(), par, *comm);
  const rt::LrSchedule sched = o.optim.lr_schedule(o.max_steps);

  sft::PackSampler sampler(int64_t(train.size()), o.seed);
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
  if (writer)
    host.info("GRPO from " + init.dir.string() + " (" + init.origin + "): " + std::to_string(train.size()) + " train and " +
            std::to_string(val.size()) + " val tasks, " + std::to_string(o.max_steps) + " steps of " +
            std::to_string(o.num_prompts_per_step) + " prompts x " + std::to_string(o.num_generations_per_prompt) +
            " samples" + rt::describe_layout(par, *comm) + (o.device == rt::Device::cuda ? ", updates on cuda" : "") +
            "; checkpoints in " + o.checkpoint_dir.string());

  // Each rank evaluates its block of the val tasks; rank 0 gathers every answer.
  const RankBlock val_block = rank_block(int64_t(val.size()), par.dp, comm->rank());
  std::vector<std::vector<int32_t>> val_prompts;
  std::vector<std::vector<rt::MediaInput>> val_media;
  std::vector<const json*> val_tasks, my_val_tasks;
  std::vector<int64_t> my_val_places;
  for (size_t i = 0; i < val.size(); ++i) val_tasks.push_back(&val[i]);
  for (int64_t i = val_block.first; i < val_block.first + val_block.count; ++i) {
    const std::string where = manifest["val"].get<std::string>() + " task " + std::to_string(i + 1);
    val_prompts.push_back(prompt_of(val[size_t(i)], where));
    val_media.push_back(media_of(val[size_t(i)], val_prompts.back(), where));
    my_val_tasks.push_back(&val[size_t(i)]);
    my_val_places.push_back(i);
  }
  auto evaluate = [&](int64_t step) {
    if (val_tasks.empty()) return;
    TaskEvalOptions eo;
    eo.generations = o.eval_generations;
    eo.max_new_tokens = o.eval_max_new_tokens > 0 ? o.eval_max_new_tokens : o.max_new_tokens;
    eo.temperature = o.eval_temperature;
    eo.top_p = o.top_p;
    eo.seed = o.seed ^ 0xe7a1ull;  // the same draws at every evaluation
    eo.stop_strings = o.stop_strings;
    eo.prompt_places = my_val_places;
    RolloutResult mine = evaluate_tasks(*model, tok, my_val_tasks, val_prompts, &val_media, eo, reward_of, rollout_of);
    // Every answer to rank 0, in the order of the val tasks (the ranks' blocks are in rank order).
    json answers = json::array();
    for (size_t i = 0; i < mine.samples.size(); ++i)
      answers.push_back({mine.samples[i].task + val_block.first, mine.samples[i].reward, mine.texts[i], mine.reasons[i]});
    // CBOR, not JSON text: an answer cut inside a UTF-8 character travels byte for byte.
    const std::vector<uint8_t> packed = json::to_cbor(answers);
    const std::vector<std::string> gathered = rt::gather_to_rank0(*comm, std::string(packed.begin(), packed.end()));
    if (!writer) return;
    RolloutResult r;
    for (const std::string& part : gathered)
      for (const json& a : json::from_cbor(part)) {
        Sample s;
        s.task = a[0].get<int64_t>();
        s.reward = a[1].get<double>();
        r.samples.push_back(std::move(s));
        r.texts.push_back(a[2].get<std::string>());
        r.reasons.push_back(a[3].get<std::string>());
      }
    json by_env = rewards_by_kind(val_tasks, r.samples).means();
    json m = {{"step", step}, {"val_reward", by_env}};
    std::string line = "step " + std::to_string(step) + ": val reward";
    for (const auto& [k, v] : by_env.items()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " | %s %.3f", k.c_str(), v.get<double>());
      line += buf;
    }
    if (step == o.max_steps) {
      json samples = json::array();
      std::map<std::string, int64_t> shown;
      for (size_t i = 0; i < r.samples.size(); ++i) {
        const json& task = *val_tasks[size_t(r.samples[i].task)];
        const std::string env = task_kind(task);
        if (shown[env]++ >= o.eval_samples) continue;
        samples.push_back({{"task", env}, {"prompt", task["prompt"]}, {"answer", r.texts[i]},
                           {"reward", r.samples[i].reward}, {"reason", r.reasons[i]}});
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", r.samples[i].reward);
        std::string question = last_user_text(task["prompt"]);
        std::replace(question.begin(), question.end(), '\n', ' ');
        progress->note("  [" + env + "] " + question + " -> " + r.texts[i] + "  (reward " + buf + ": " + r.reasons[i] + ")");
      }
      m["samples"] = samples;
    }
    metrics->write(m);
    progress->note(line);
  };

  auto save = [&](int64_t step) {
    state.step = step;
    state.data_position = sampler.position();
    const fs::path written = rt::save_on_rank0(ckpts, step, *model, optimizer, state, &tok, *comm);
    if (writer) progress->note("checkpoint step " + std::to_string(step) + " -> " + written.string());
  };

  UpdateOptions uo;
  uo.surrogate = o.surrogate;
  uo.normalization = o.normalization;
  uo.micro_batch_size = o.micro_batch_size;
  uo.max_grad_norm = o.optim.grad_clip;
  uo.expert_bias_rate = float(o.moe_bias_update_rate);
  uo.comm = comm;
  // On cuda the policy's weights and moments live on the GPU from here; the CPU model, which
  // samples, evaluates and is saved, is brought up to date after each step's updates.
  rt::TrainStepper stepper(o.device, *model, optimizer, train_options(uo));
  uo.device = stepper.gpu();
  // The reference's scores on cuda come from its own bf16 copy through the policy's kernels, so
  // a policy still at the start is at KL 0 exactly, as on the CPU (fp32 reference scores beside
  // bf16 policy scores would put a floor of rounding noise under the KL term).
  std::unique_ptr<rt::DeviceScorer> reference_on_device = reference ? rt::open_device_scorer(o.device, *reference) : nullptr;
  if (!resumed && state.step == 0) evaluate(0);
  if (writer && state.step >= o.max_steps) host.info(ckpts.complete_message(state.step));

  const int64_t G = o.num_generations_per_prompt;
  const int64_t per_update = share.per_update;  // this rank's block of each update
  for (int64_t step = state.step; step < o.max_steps; ++step) {
    const auto t0 = Clock::now();
    // Every rank draws the step's prompts alike and samples its share of them.
    const std::vector<int64_t> step_picked = sampler.next(o.num_prompts_per_step);
    std::vector<int64_t> picked;
    for (int64_t i : share.prompts) picked.push_back(step_picked[size_t(i)]);
    const std::vector<const json*> step_tasks = pointers(train, step_picked), tasks = pointers(train, picked);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::vector<rt::MediaInput>> prompt_media;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const std::string where = manifest["train"].get<std::string>() + " task " + std::to_string(picked[i] + 1);
      prompts.push_back(prompt_of(*tasks[i], where));
      prompt_media.push_back(media_of(*tasks[i], prompts.back(), where));
    }
    RolloutOptions ro;
    ro.generations = G;
    ro.sampling.max_new_tokens = o.max_new_tokens;
    ro.sampling.temperature = float(o.temperature);
    ro.sampling.top_p = float(o.top_p);
    ro.sampling.top_k = o.top_k;
    // A fresh seed per step, a function of the step alone, so a resumed run samples the same.
    ro.sampling.seed = rt::Rng(o.seed ^ (0x51ed270b27e1ull * uint64_t(step + 1))).next_u64();
    ro.sampling.stop_tokens = stop_tokens;
    ro.stop_strings = stop_strings;
    ro.media = &prompt_media;
    ro.prompt_places = share.prompts;
    RolloutResult r = rollout_of(*model, tok, tasks, prompts, ro, reward_of);

    std::vector<double> my_rewards;
    for (const Sample& s : r.samples) my_rewards.push_back(s.reward);
    const std::vector<double> adv = group_advantages(my_rewards, G, o.advantages);
    std::vector<const Sample*> all;
    for (size_t i = 0; i < r.samples.size(); ++i) {
      r.samples[i].advantage = adv[i];
      all.push_back(&r.samples[i]);
    }
    // Old log-probs (and the entropy of the sampling policy) from the model that sampled, scored in
    // the batches the updates use, so that an unchanged policy's ratio is exactly 1.
    TokenScores old = score_as_updates(*model, all, per_update, o.micro_batch_size, true, uo.device);
    double entropy = 0;
    int64_t tokens = 0, trained = 0;  // response tokens; those the model produced (not tool output)
    for (size_t i = 0; i < all.size(); ++i) {
      r.samples[i].old_lp = std::move(old.lp[i]);
      for (size_t k = 0; k < old.entropy[i].size(); ++k)
        if (trained_at(r.samples[i], k)) entropy += old.entropy[i][k], ++trained;
      tokens += int64_t(r.samples[i].response.size());
    }
    if (reference) {
      TokenScores ref = score_as_updates(*reference, all, per_update, o.micro_batch_size, false, reference_on_device.get());
      for (size_t i = 0; i < all.size(); ++i) r.samples[i].ref_lp = std::move(ref.lp[i]);
    }

    const float lr = sched.lr(step);
    UpdateStats total;
    int64_t updates = 0;
    double grad_norm = 0;
    for (int64_t epoch = 0; epoch < o.num_epochs; ++epoch) {
      for (int64_t b = 0; b < int64_t(all.size()); b += per_update) {
        std::vector<const Sample*> part(all.begin() + b, all.begin() + std::min<int64_t>(int64_t(all.size()), b + per_update));
        UpdateStats u = policy_update(*model, optimizer, lr, part, uo, /*fresh=*/epoch == 0 && b == 0);
        total.loss += u.loss, total.clip_fraction += u.clip_fraction, total.kl_ref += u.kl_ref, total.kl_old += u.kl_old;
        grad_norm = std::max(grad_norm, u.grad_norm);
        ++updates;
      }
    }
    stepper.sync_to_host();
    // The step's figures over every rank: rewards in the order of the step's samples, the sums.
    std::vector<size_t> places;
    for (size_t j = 0; j < r.samples.size(); ++j)
      places.push_back(size_t(share.prompts[size_t(r.samples[j].task)] * G) + j % size_t(G));
    const std::vector<double> rewards = values_of_all_ranks(*comm, size_t(o.rollouts_per_step()), places, my_rewards);
    std::vector<Sample> step_samples(rewards.size());
    for (size_t j = 0; j < rewards.size(); ++j) step_samples[j].task = int64_t(j) / G, step_samples[j].reward = rewards[j];
    // One all-reduce: the sums, then the rollout's per-sample means (multi-turn turns and tool
    // calls; equal shares, so the mean of the ranks' means).
    std::vector<double> sums = {entropy, double(trained), double(tokens), double(r.generated_tokens)};
    json stats = r.stats;
    for (auto& [key, value] : stats.items())
      if (value.is_number()) sums.push_back(value.get<double>());
    if (comm->size() > 1) comm->all_reduce_sum(sums.data(), sums.size());
    size_t next_stat = 4;
    for (auto& [key, value] : stats.items())
      if (value.is_number()) value = sums[next_stat++] / double(comm->size());
    entropy = sums[0], trained = int64_t(sums[1]), tokens = int64_t(sums[2]);
    // Generation runs side by side: the slowest rank's time.
    std::vector<float> rollout_secs(size_t(comm->size()));
    const float my_secs = float(r.seconds);
    comm->all_gather(&my_secs, rollout_secs.data(), 1);
    const double slowest = *std::max_element(rollout_secs.begin(), rollout_secs.end());
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    double var = 0;
    const double mean = mean_of(rewards);
    for (double x : rewards) var += (x - mean) * (x - mean);
    int64_t flat_groups = 0;
    for (size_t g = 0; g < rewards.size(); g += size_t(G)) {
      bool flat = true;
      for (size_t i = 1; i < size_t(G); ++i) flat &= rewards[g + i] == rewards[g];
      flat_groups += flat;
    }
    const double tps = slowest > 0 ? sums[3] / slowest : 0.0;
    json m = {{"step", step + 1},
              {"reward_mean", mean},
              {"reward_std", std::sqrt(var / double(std::max<size_t>(1, rewards.size())))},
              {"reward", rewards_by_kind(step_tasks, step_samples).means()},
              {"flat_groups", double(flat_groups) / double(step_tasks.size())},
              {"loss", total.loss / double(updates)},
              {"kl", reference ? total.kl_ref / double(updates) : 0.0},
              {"kl_old", total.kl_old / double(updates)},
              {"entropy", trained ? entropy / double(trained) : 0.0},
              {"clip_fraction", total.clip_fraction / double(updates)},
              {"response_length", double(tokens) / double(rewards.size())},
              {"rollout_tokens_per_s", tps},
              {"grad_norm", grad_norm},
              {"lr", lr},
              {"optimizer_updates", updates},
              {"step_seconds", secs},
              {"epoch", sampler.epoch()}};
    m.update(stats);
    if (writer) {
      metrics->write(m);
      progress->update(step + 1, rt::training_detail(total.loss / double(updates), tps));
      if ((step + 1) % o.log_interval == 0) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "step %lld: reward %.3f +- %.3f | entropy %.3f | clip %.3f | length %.1f",
                      (long long)(step + 1), mean, m["reward_std"].get<double>(), m["entropy"].get<double>(),
                      m["clip_fraction"].get<double>(), m["response_length"].get<double>());
        progress->note(buf);
      }
    }

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
