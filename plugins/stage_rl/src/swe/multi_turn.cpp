#include "swe/multi_turn.hpp"

#include "swe/tool_protocol.hpp"

#include "train/generation_eval.hpp"

#include "nemokit/runtime/rng.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

namespace nemokit::rl::swe {
using nlohmann::json;

ToolUseOptions ToolUseOptions::from_config(const json& config) {
  ToolUseOptions o;
  if (!config.contains("tool_use")) return o;
  rt::TableReader t(config["tool_use"], "tool_use");
  t.integer("max_turns", o.max_turns, 1);
  t.integer("max_output_chars", o.max_output_chars, 16);
  t.integer("max_response_tokens", o.max_response_tokens, 0);
  t.integer("tool_threads", o.tool_threads, 1);
  t.no_unknown_keys();
  return o;
}

namespace {

// f(i) for every i in `items`, on up to `threads` threads; the first exception is rethrown.
template <class F>
void parallel_for(const std::vector<size_t>& items, int64_t threads, F&& f) {
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (size_t k = next++; k < items.size(); k = next++) {
      try {
        f(items[k]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t n = std::min<size_t>(items.size(), size_t(std::max<int64_t>(1, threads)));
  for (size_t i = 1; i < n; ++i) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

struct Episode {
  std::vector<int32_t> context;  // prompt + response so far
  std::unique_ptr<Environment::Tools> tools;
  std::optional<ToolCallRequest> call;  // this turn's request
  bool closed = false;                  // this turn ended its own assistant message (<|im_end|>)
  std::string last_turn;
  bool done = false;
};

// What the model reads back for one call: the command's output and a failing exit code, or why
// the call could not run.
ToolTurn execute(const ToolCallRequest& call, Episode& e, const json& task, const ToolsFn& tools_of) {
  ToolTurn t;
  t.exit_code = -1;
  auto cmd = call.params.find("command");
  if (!call.error.empty()) t.output = "error: " + call.error;
  else if (call.function != "run") t.output = "error: unknown function \"" + call.function + "\"; the tool is run (parameter: command)";
  else if (cmd == call.params.end()) t.output = "error: run needs <parameter=command>";
  if (!t.output.empty()) return t;
  if (!e.tools) e.tools = tools_of(task);
  if (!e.tools) return {cmd->second, "error: this task's environment has no tools", -1};
  t = e.tools->run(cmd->second);
  if (t.exit_code != 0) t.output += (t.output.empty() || t.output.back() == '\n' ? "" : "\n") + std::string("[exit code ") +
                                    std::to_string(t.exit_code) + "]";
  return t;
}

}  // namespace

MultiTurnResult multi_turn_rollout(const GenerateFn& generate, const rt::Tokenizer& tok, const std::vector<const json*>& tasks,
                                   const std::vector<std::vector<int32_t>>& prompts, const RolloutOptions& o,
                                   const ToolUseOptions& tu, bool enable_thinking, const ToolsFn& tools_of,
                                   const RewardFn& reward_of) {
  MultiTurnResult out;
  RolloutResult& r = out.rollout;
  const size_t n = prompts.size() * size_t(o.generations);
  std::vector<Episode> eps(n);
  r.samples.resize(n);
  out.episodes.resize(n);
  for (size_t j = 0; j < n; ++j) {
    r.samples[j].task = int64_t(j) / o.generations;
    r.samples[j].prompt = prompts[size_t(r.samples[j].task)];
    eps[j].context = r.samples[j].prompt;
  }
  // A turn may also end right after its call (the template's "</tool_call>" is one token).
  rt::SamplingOptions sampling = o.sampling;
  if (auto id = tok.token_to_id("</tool_call>"))
    if (std::find(sampling.stop_tokens.begin(), sampling.stop_tokens.end(), *id) == sampling.stop_tokens.end())
      sampling.stop_tokens.push_back(*id);
  const size_t budget = tu.max_response_tokens > 0 ? size_t(tu.max_response_tokens) : SIZE_MAX;
  // An episode keeps its generator stream in every turn, whichever episodes are still running.
  const std::vector<uint64_t> streams = sample_streams(prompts.size(), o);

  for (int64_t turn = 0; turn < tu.max_turns; ++turn) {
    std::vector<size_t> active, calling;
    std::vector<std::vector<int32_t>> contexts;
    sampling.streams.clear();
    for (size_t j = 0; j < n; ++j)
      if (!eps[j].done) active.push_back(j), contexts.push_back(eps[j].context), sampling.streams.push_back(streams[j]);
    if (active.empty() && !tu.every_turn) break;
    // Turn 0 draws as a one-turn rollout would; later turns from seeds of their own.
    sampling.seed = turn == 0 ? o.sampling.seed : rt::Rng(o.sampling.seed ^ (0x9e3779b97f4a7c15ull * uint64_t(turn))).next_u64();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int32_t>> gen = generate(contexts, sampling);
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (size_t k = 0; k < active.size(); ++k) {
      const size_t j = active[k];
      Episode& e = eps[j];
      Sample& s = r.samples[j];
      std::vector<int32_t>& ids = gen[k];
      ids.resize(std::min({stop_cut(tok, ids, o.stop_strings), ids.size(), budget - s.response.size()}));
      r.generated_tokens += int64_t(ids.size());
      s.response.insert(s.response.end(), ids.begin(), ids.end());
      s.trained.insert(s.trained.end(), ids.size(), 1);
      e.context.insert(e.context.end(), ids.begin(), ids.end());
      e.last_turn = tok.decode_generated(ids);
      ++out.episodes[j].turns;
      e.call = find_tool_call(e.last_turn);
      e.closed = e.last_turn.ends_with("<|im_end|>");
      if (!e.call || turn + 1 == tu.max_turns || s.response.size() >= budget) e.done = true;
      else calling.push_back(j);
    }
    std::vector<ToolTurn> results(n);
    parallel_for(calling, tu.tool_threads, [&](size_t j) {
      results[j] = execute(*eps[j].call, eps[j], *tasks[size_t(r.samples[j].task)], tools_of);
    });
    for (size_t j : calling) {
      Sample& s = r.samples[j];
      const std::string text = tool_turn_text(shorten(results[j].output, size_t(tu.max_output_chars)), eps[j].closed,
                                              enable_thinking);
      const std::vector<int32_t> ids = tok.encode(text);
      EpisodeLog& log = out.episodes[j];
      ++log.tool_calls;
      log.calls.push_back(std::move(results[j]));
      if (s.response.size() + ids.size() >= budget) {  // no room to answer after it
        eps[j].done = true;
        continue;
      }
      s.response.insert(s.response.end(), ids.begin(), ids.end());
      s.trained.insert(s.trained.end(), ids.size(), 0);
      eps[j].context.insert(eps[j].context.end(), ids.begin(), ids.end());
      log.tool_tokens += int64_t(ids.size());
    }
  }
  for (Episode& e : eps) e.tools.reset();  // the sessions' sandboxes end before scoring starts more
  // The episode's answer is its last model turn; scored on up to tool_threads sandboxes at once.
  r.texts.resize(n);
  r.reasons.resize(n);
  std::vector<size_t> all(n);
  for (size_t j = 0; j < n; ++j) all[j] = j, r.texts[j] = sft::answer_text(eps[j].last_turn);
  parallel_for(all, tu.tool_threads, [&](size_t j) {
    Reward reward = reward_of(*tasks[size_t(r.samples[j].task)], r.texts[j]);
    r.samples[j].reward = reward.value;
    r.reasons[j] = std::move(reward.reason);
  });
  double turns = 0, calls = 0, tool_tokens = 0;
  for (const EpisodeLog& l : out.episodes) turns += double(l.turns), calls += double(l.tool_calls), tool_tokens += double(l.tool_tokens);
  const double d = double(std::max<size_t>(1, n));
  r.stats = {{"turns", turns / d}, {"tool_calls", calls / d}, {"tool_tokens", tool_tokens / d}};
  return out;
}

RolloutFn multi_turn_rollout_fn(const ToolUseOptions& tools, bool enable_thinking, ToolsFn tools_of) {
  return [tools, enable_thinking, tools_of = std::move(tools_of)](rt::NemotronH& model, const rt::Tokenizer& tok,
                                                                  const std::vector<const json*>& tasks,
                                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                                  const RolloutOptions& o, const RewardFn& reward_of) {
    GenerateFn gen = [&model](const std::vector<std::vector<int32_t>>& c, const rt::SamplingOptions& s) {
      return rt::generate(model, c, s);
    };
    ToolUseOptions tu = tools;
    tu.every_turn = model.expert_comm() != nullptr;
    return multi_turn_rollout(gen, tok, tasks, prompts, o, tu, enable_thinking, tools_of, reward_of).rollout;
  };
}

}  // namespace nemokit::rl::swe
