// swe2's multi-turn rollouts: the tool-call protocol against the chat template's own rendering,
// scripted episodes through the real code_execution environment (commands run in each episode's
// sandbox, outputs appended as tool turns, tool tokens masked out of the loss), hostile commands
// leaving the host unchanged, and the mask's effect on the GRPO gradient of a tiny model.
#include "chat/chat_template.hpp"
#include "env/environment.hpp"
#include "grpo/policy.hpp"
#include "swe/multi_turn.hpp"
#include "swe/tool_protocol.hpp"

#include "support/files.hpp"
#include "tiny_model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
namespace rt = nemokit::rt;
using namespace nemokit::rl;
using namespace nemokit::rl::swe;
using nlohmann::json;

namespace {

constexpr uint32_t kUidBase = 3200000000u;

std::string call_of(const std::string& command) {
  return "<tool_call>\n<function=run>\n<parameter=command>\n" + command + "\n</parameter>\n</function>\n</tool_call>";
}

TEST(ToolProtocol, ReadsTheCallsTheTemplateWrites) {
  nlohmann::ordered_json record = {
      {"messages",
       {{{"role", "user"}, {"content", "fix it"}},
        {{"role", "assistant"}, {"content", ""},
         {"tool_calls", {{{"name", "run"}, {"arguments", {{"command", "sh tests/t.sh\necho done"}}}}}}}}}};
  auto seg = nemokit::sft::render_chat(record, {}, "test");
  std::string trained;
  for (const auto& s : seg)
    if (s.trained) trained += s.text;
  auto call = find_tool_call(trained);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->error, "");
  EXPECT_EQ(call->function, "run");
  EXPECT_EQ(call->params.at("command"), "sh tests/t.sh\necho done");

  EXPECT_FALSE(find_tool_call("the answer is a patch"));
  EXPECT_FALSE(find_tool_call("<tool_call>\n<function=run>\n<parameter=command>\nls"));  // never closed
  auto bad = find_tool_call("<tool_call>\n<function=run>\n<parameter=command>\nls\n</tool_call>");
  ASSERT_TRUE(bad);
  EXPECT_NE(bad->error.find("</parameter>"), std::string::npos) << bad->error;
  auto nofn = find_tool_call("<tool_call>ls</tool_call>");
  ASSERT_TRUE(nofn);
  EXPECT_NE(nofn->error.find("<function="), std::string::npos);
}

TEST(ToolProtocol, ToolTurnContinuesTheConversationAsTheTemplateRendersIt) {
  // [user, assistant calling run, tool result] + generation prompt: the text after the
  // assistant's turn is exactly what a rollout appends.
  for (bool thinking : {false, true}) {
    nlohmann::ordered_json record = {
        {"messages",
         {{{"role", "user"}, {"content", "fix it"}},
          {{"role", "assistant"}, {"content", ""}, {"tool_calls", {{{"name", "run"}, {"arguments", {{"command", "ls"}}}}}}},
          {{"role", "tool"}, {"content", "lib\ntests"}}}}};
    nemokit::sft::RenderOptions ro;
    ro.enable_thinking = thinking;
    ro.add_generation_prompt = true;
    const std::string full = nemokit::sft::joined_text(nemokit::sft::render_chat(record, ro, "test"));
    const std::string upto_call = full.substr(0, full.find("</tool_call>") + std::string("</tool_call>").size());
    EXPECT_EQ(upto_call + tool_turn_text("lib\ntests", /*turn_closed=*/false, thinking), full);
    EXPECT_EQ(upto_call + "\n<|im_end|>" + tool_turn_text("lib\ntests", /*turn_closed=*/true, thinking), full);
  }
  EXPECT_EQ(shorten("0123456789", 4), "01\n[... 6 characters left out ...]\n89");
  EXPECT_EQ(shorten("0123", 4), "0123");
}

TEST(ToolProtocol, OptionsNameTheirKeys) {
  EXPECT_EQ(ToolUseOptions::from_config(json::object()).max_turns, 4);
  auto o = ToolUseOptions::from_config({{"tool_use", {{"max_turns", 2}, {"max_output_chars", 100}}}});
  EXPECT_EQ(o.max_turns, 2);
  EXPECT_EQ(o.max_output_chars, 100);
  try {
    ToolUseOptions::from_config({{"tool_use", {{"max_turn", 2}}}});
    FAIL() << "a typo was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tool_use.max_turn"), std::string::npos) << e.what();
  }
}

// A tokenizer that keeps the chat template's markers whole, trained on text like the episodes'.
rt::Tokenizer test_tokenizer(const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path text = dir / "text.txt";
  std::ofstream(text) << "sh tests/test_add.sh\nadd() { echo $(( $1 - $2 )); }\nok FAIL expected printed\n"
                         "--- a/lib/add.sh\n+++ b/lib/add.sh\n@@ -1 +1 @@\n<function=run>\n<parameter=command>\n";
  rt::BpeTrainOptions o;
  o.vocab_size = 400;
  o.special_tokens = nemokit::sft::chat_special_tokens();
  o.threads = 1;
  return rt::train_bpe({text}, o);
}

const char* kSource = "add() {\n  echo $(($1 - $2))\n}\n";
const char* kTest = ". ./lib/add.sh\nst=0\nfor c in '5 2 3' '0 1 -1'; do\n  set -- $c\n"
                    "  got=$(add $2 $3)\n  if [ \"$got\" = \"$1\" ]; then echo \"ok: add $2 $3\"; else\n"
                    "    echo \"FAIL: add $2 $3 printed $got, expected $1\"; st=1; fi\ndone\nexit $st\n";
const char* kFix = "```diff\n--- a/lib/add.sh\n+++ b/lib/add.sh\n@@ -1,3 +1,3 @@\n add() {\n-  echo $(($1 - $2))\n"
                   "+  echo $(($1 + $2))\n }\n```";

json add_task() {
  return {{"prompt", "fix lib/add.sh"},
          {"environment", "code_execution"},
          {"files", {{"lib/add.sh", kSource}, {"tests/test_add.sh", kTest}}},
          {"test_command", "sh tests/test_add.sh"},
          {"protected", {"tests"}}};
}

// Processes whose uid lies in these tests' sandbox range.
int sandbox_processes() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    if (e.path().filename().string().find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "status");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("Uid:", 0) == 0) {
        const unsigned long uid = std::stoul(line.substr(4));
        n += uid >= kUidBase && uid < kUidBase + (1u << 24);
      }
  }
  return n;
}

class Episodes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (namespaces, mounts)";
    dir_ = fs::path(NEMOKIT_BINARY_DIR) / ("swe-rollout-" + std::to_string(getpid()));
    tok_ = std::make_unique<rt::Tokenizer>(test_tokenizer(dir_));
    envs_ = std::make_unique<EnvironmentSet>(EnvironmentSet::load(
        {{"code_execution", {{"wall_seconds", 4}, {"cpu_seconds", 2}, {"memory_mb", 256}, {"max_processes", 16},
                             {"output_bytes", 2048}, {"disk_mb", 32}, {"uid_base", kUidBase}}}}));
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Runs one task's G = scripts.size() episodes: sample j's turn t is scripts[j][t] (a sample is
  // active at turn t while its script has one; every turn but its last must call a tool).
  MultiTurnResult run(const std::vector<std::vector<std::string>>& scripts, const ToolUseOptions& tu) {
    contexts_.clear();
    int64_t turn = 0;
    GenerateFn fake = [&](const std::vector<std::vector<int32_t>>& ctx, const rt::SamplingOptions&) {
      std::vector<std::vector<int32_t>> out;
      for (size_t j = 0; j < scripts.size(); ++j)
        if (size_t(turn) < scripts[j].size()) out.push_back(tok_->encode(scripts[j][size_t(turn)]));
      EXPECT_EQ(out.size(), ctx.size()) << "turn " << turn;
      contexts_.push_back(ctx);
      ++turn;
      return out;
    };
    task_ = add_task();
    RolloutOptions o;
    o.generations = int64_t(scripts.size());
    std::vector<std::vector<int32_t>> prompts = {tok_->encode("<|im_start|>user\nfix lib/add.sh<|im_end|>\n<|im_start|>assistant\n")};
    RewardFn reward_of = [this](const json& t, const std::string& r) { return envs_->score(t, r); };
    ToolsFn tools_of = [this](const json& t) { return envs_->tools(t); };
    return multi_turn_rollout(fake, *tok_, {&task_}, prompts, o, tu, false, tools_of, reward_of);
  }

  // The text of a sample's response tokens with the given flag.
  std::string text_of(const Sample& s, uint8_t flag) {
    std::vector<int32_t> ids;
    for (size_t k = 0; k < s.response.size(); ++k)
      if (s.trained[k] == flag) ids.push_back(s.response[k]);
    return tok_->decode(ids);
  }

  fs::path dir_;
  std::unique_ptr<rt::Tokenizer> tok_;
  std::unique_ptr<EnvironmentSet> envs_;
  std::vector<std::vector<std::vector<int32_t>>> contexts_;
  json task_;
};

TEST_F(Episodes, CommandsRunInEachEpisodesSandboxAndToolTurnsAreMasked) {
  const std::string host_file = "/tmp/nemokit-swe-host-" + std::to_string(getpid());
  ToolUseOptions tu;
  tu.max_turns = 3;
  MultiTurnResult r = run(
      {// runs the tests (stopping at </tool_call>), then leaves a file and reads it back with the
       // source in a closed turn, then answers with the fix
       {"Run the tests first.\n" + call_of("sh tests/test_add.sh"),
        call_of("echo noted > notes.txt; cat notes.txt lib/add.sh") + "\n<|im_end|>", kFix + std::string("<|im_end|>")},
       // another episode's session: no notes.txt; a write to /tmp stays in the sandbox; a wrong fix
       {call_of("cat notes.txt; echo x > " + host_file + "; cat " + host_file), "```diff\n--- a/lib/add.sh\n+++ b/lib/add.sh\n"
        "@@ -2 +2 @@\n-  echo $(($1 - $2))\n+  echo $(($1 * $2))\n```<|im_end|>"},
       // an unknown function gets an error back; then an answer with no patch
       {"<tool_call>\n<function=search>\n<parameter=q>\nadd\n</parameter>\n</function>\n</tool_call>", "no idea<|im_end|>"}},
      tu);
  ASSERT_EQ(r.episodes.size(), 3u);
  const EpisodeLog& a = r.episodes[0];
  ASSERT_EQ(a.tool_calls, 2);
  EXPECT_EQ(a.turns, 3);
  EXPECT_EQ(a.calls[0].exit_code, 1);
  EXPECT_NE(a.calls[0].output.find("FAIL: add 2 3 printed -1, expected 5"), std::string::npos) << a.calls[0].output;
  EXPECT_NE(a.calls[0].output.find("[exit code 1]"), std::string::npos) << a.calls[0].output;
  EXPECT_EQ(a.calls[1].output, std::string("noted\n") + kSource);
  const EpisodeLog& b = r.episodes[1];
  ASSERT_EQ(b.tool_calls, 1);
  EXPECT_NE(b.calls[0].output.find("notes.txt"), std::string::npos) << b.calls[0].output;  // "No such file"
  EXPECT_NE(b.calls[0].output.find("x\n"), std::string::npos) << b.calls[0].output;
  EXPECT_FALSE(fs::exists(host_file));
  ASSERT_EQ(r.episodes[2].tool_calls, 1);
  EXPECT_NE(r.episodes[2].calls[0].output.find("unknown function \"search\""), std::string::npos);

  // The final patch is scored on a fresh copy: the fix passes, the wrong one and no patch do not.
  const RolloutResult& ro = r.rollout;
  EXPECT_EQ(ro.samples[0].reward, 1) << ro.reasons[0];
  EXPECT_EQ(ro.samples[1].reward, 0);
  EXPECT_NE(ro.reasons[1].find("tests fail"), std::string::npos) << ro.reasons[1];
  EXPECT_EQ(ro.samples[2].reward, 0);
  EXPECT_NE(ro.reasons[2].find("no patch"), std::string::npos) << ro.reasons[2];
  EXPECT_NEAR(ro.stats["tool_calls"].get<double>(), 4.0 / 3.0, 1e-9);
  EXPECT_NEAR(ro.stats["turns"].get<double>(), 7.0 / 3.0, 1e-9);

  // The model's tokens are exactly its turns; everything else is the tool turns, as rendered.
  const Sample& s = ro.samples[0];
  ASSERT_EQ(s.trained.size(), s.response.size());
  EXPECT_EQ(text_of(s, 1), "Run the tests first.\n" + call_of("sh tests/test_add.sh") +
                               call_of("echo noted > notes.txt; cat notes.txt lib/add.sh") + "\n<|im_end|>" + kFix +
                               "<|im_end|>");
  EXPECT_EQ(text_of(s, 0), tool_turn_text(a.calls[0].output, false, false) + tool_turn_text(a.calls[1].output, true, false));
  // What the model saw at its second turn ends with the first output and a fresh generation prompt.
  ASSERT_EQ(contexts_.size(), 3u);
  const std::string seen = tok_->decode(contexts_[1][0]);
  EXPECT_TRUE(seen.ends_with("</tool_response>\n<|im_end|>\n<|im_start|>assistant\n<think></think>")) << seen;
  EXPECT_NE(seen.find("<tool_response>\n" + a.calls[0].output), std::string::npos);
  // No loss target on a tool token; every model token is one.
  rt::Batch batch = make_sample_batch({&s});
  for (size_t k = 0; k < s.response.size(); ++k)
    EXPECT_EQ(batch.targets[s.prompt.size() - 1 + k], s.trained[k] ? s.response[k] : -1) << k;
  EXPECT_EQ(trained_tokens(s), int64_t(tok_->encode(text_of(s, 1)).size()));
  EXPECT_EQ(sandbox_processes(), 0);
}

TEST_F(Episodes, TurnAndTokenLimitsEndEpisodes) {
  ToolUseOptions tu;
  tu.max_turns = 2;
  tu.max_output_chars = 64;
  // Still calling at the last turn: the episode ends there, scored on that turn (no patch).
  MultiTurnResult r = run({{call_of("seq 1 300"), call_of("ls")}}, tu);
  EXPECT_EQ(r.episodes[0].turns, 2);
  EXPECT_EQ(r.episodes[0].tool_calls, 1);
  EXPECT_EQ(r.rollout.samples[0].reward, 0);
  // The long output reached the model cut to 64 characters, head and tail.
  const std::string tool = text_of(r.rollout.samples[0], 0);
  EXPECT_NE(tool.find("1\n2\n3\n"), std::string::npos) << tool;
  EXPECT_NE(tool.find("characters left out"), std::string::npos) << tool;
  EXPECT_NE(tool.find("299\n300\n"), std::string::npos) << tool;
  EXPECT_LT(tool.size(), 300u);
  // A token budget: the first turn alone spends it, so no tool runs.
  tu.max_response_tokens = int64_t(tok_->encode(call_of("ls")).size());
  r = run({{call_of("ls"), kFix}}, tu);
  EXPECT_EQ(r.episodes[0].turns, 1);
  EXPECT_EQ(r.episodes[0].tool_calls, 0);
}

TEST_F(Episodes, HostileCommandsLeaveTheHostUnchanged) {
  const fs::path canary = dir_ / "canary";
  std::ofstream(canary) << "untouched\n";
  fs::permissions(canary, fs::perms::all);
  fs::permissions(dir_, fs::perms::all);
  const std::string c = canary.string();
  ToolUseOptions tu;
  tu.max_turns = 2;
  const auto t0 = std::chrono::steady_clock::now();
  MultiTurnResult r = run({{call_of("echo pwned > " + c + "; rm -f " + c + "; touch /etc/nemokit-swe-pwned"), kFix},
                           {call_of("f() { f | f & }; f"), kFix},
                           {call_of("sleep 600"), kFix},
                           {call_of("yes nemokit"), kFix},
                           {call_of("kill -9 -1; kill -9 " + std::to_string(getpid())), kFix},
                           {call_of("cat /proc/1/environ; ls /root"), kFix}},
                          tu);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 60);  // the wall limit (4 s) ends the sleep and the fork bomb
  EXPECT_EQ(nemokit::test::read_file(canary), "untouched\n");
  EXPECT_FALSE(fs::exists("/etc/nemokit-swe-pwned"));
  EXPECT_EQ(sandbox_processes(), 0);
  for (size_t j = 0; j < r.episodes.size(); ++j) {
    ASSERT_EQ(r.episodes[j].tool_calls, 1) << j;
    // Every episode still answers after its hostile call, and the fix passes on a fresh copy.
    EXPECT_EQ(r.rollout.samples[j].reward, 1) << j << ": " << r.rollout.reasons[j];
  }
  EXPECT_LE(r.episodes[3].calls[0].output.size(), 2048u + 200u);  // the output cap, and its note
  EXPECT_NE(r.episodes[2].calls[0].output.find("wall"), std::string::npos) << r.episodes[2].calls[0].output;
}

// Tool tokens carry no gradient: a response whose tail is a tool turn trains exactly as the
// response without it, and the old log-probs at masked tokens change nothing.
TEST(ToolMask, ToolTokensAddNothingToTheGradient) {
  rt::NemotronH model(rt::testing::tiny_config("M*-"));
  model.init_weights(11);
  Sample with, without;
  with.prompt = without.prompt = {1, 2, 3};
  with.response = {4, 5, 6, 7, 8};
  with.trained = {1, 1, 0, 0, 0};
  without.response = {4, 5};
  with.advantage = without.advantage = 0.7;
  without.old_lp = score_samples(model, {&without}, 1, false).lp[0];
  with.old_lp = {without.old_lp[0], without.old_lp[1], -9.f, 3.f, 0.f};
  auto grads = [&] {
    std::vector<float> g;
    for (rt::Parameter* p : model.parameters())
      if (!p->buffer) g.insert(g.end(), p->grad.f32(), p->grad.f32() + p->grad.numel());
    return g;
  };
  for (LossNormalization norm : {LossNormalization::Token, LossNormalization::Sequence}) {
    UpdateOptions o;
    o.normalization = norm;
    UpdateStats a = accumulate_gradient(model, {&with}, o, /*fresh=*/false);
    std::vector<float> ga = grads();
    UpdateStats b = accumulate_gradient(model, {&without}, o, /*fresh=*/false);
    std::vector<float> gb = grads();
    EXPECT_EQ(a.tokens, 2);
    EXPECT_NEAR(a.loss, b.loss, 1e-6);
    EXPECT_EQ(a.clip_fraction, 0.0);  // the masked tokens' wild old log-probs were never looked at
    ASSERT_EQ(ga.size(), gb.size());
    double norm2 = 0;
    for (size_t i = 0; i < ga.size(); ++i) {
      ASSERT_NEAR(ga[i], gb[i], 1e-6f) << i;
      norm2 += double(gb[i]) * gb[i];
    }
    EXPECT_GT(norm2, 0.0);
  }
  // A model token after the tool turn is trained again.
  with.trained = {1, 1, 0, 0, 1};
  with.old_lp = score_samples(model, {&with}, 1, false).lp[0];
  EXPECT_EQ(accumulate_gradient(model, {&with}, UpdateOptions{}, true).tokens, 3);
}

}  // namespace
