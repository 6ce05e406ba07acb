// The native Nemotron 3 Nano chat renderer against the template itself: every conversation in
// fixtures/chat_template_cases.json (rendered by transformers, see make_chat_fixture.py) must come out
// byte for byte, the trained segments must be exactly the assistant's output, and bad records must say
// where they are.
#include "chat/chat_template.hpp"
#include "chat/python_text.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace {

using nemokit::sft::ChatFormatError;
using nemokit::sft::ChatSegment;
using nemokit::sft::RenderOptions;
using nemokit::sft::joined_text;
using nemokit::sft::render_chat;
using ordered_json = nlohmann::ordered_json;

const std::string kFixture = std::string(NEMOKIT_SOURCE_DIR) + "/tests/sft/fixtures/chat_template_cases.json";

const ordered_json& fixture_cases() {
  static const ordered_json cases = [] {
    std::ifstream in(kFixture);
    EXPECT_TRUE(in) << "cannot open " << kFixture;
    return ordered_json::parse(in);
  }();
  return cases;
}

const ordered_json& fixture_case(const std::string& name) {
  for (const auto& c : fixture_cases())
    if (c["name"] == name) return c;
  throw std::runtime_error("no fixture case " + name);
}

RenderOptions options_of(const ordered_json& c) {
  RenderOptions o;
  o.enable_thinking = c["options"]["enable_thinking"].get<bool>();
  o.add_generation_prompt = c["options"]["add_generation_prompt"].get<bool>();
  if (c["options"].contains("truncate_history_thinking"))
    o.truncate_history_thinking = c["options"]["truncate_history_thinking"].get<bool>();
  return o;
}

std::vector<ChatSegment> render_case(const ordered_json& c) {
  return render_chat(c["record"], options_of(c), "chat_template_cases.json:" + c["name"].get<std::string>());
}

std::vector<std::string> trained_texts(const std::vector<ChatSegment>& segments) {
  std::vector<std::string> out;
  for (const auto& s : segments)
    if (s.trained) out.push_back(s.text);
  return out;
}

// The error message render_chat throws for `record`, or "" when it renders.
std::string error_of(const std::string& record_json) {
  try {
    render_chat(ordered_json::parse(record_json), RenderOptions{}, "data/train.jsonl:7");
  } catch (const ChatFormatError& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, EveryFixtureCaseRendersLikeTransformers) {
  ASSERT_GE(fixture_cases().size(), 24u);
  for (const auto& c : fixture_cases()) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto segments = render_case(c);
    EXPECT_EQ(joined_text(segments), c["rendered"].get<std::string>());
  }
}

TEST(ChatTemplate, TrainedSegmentsAreTheAssistantTurnsAfterTheirHeader) {
  for (const auto& c : fixture_cases()) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto segments = render_case(c);
    std::size_t assistants = 0;
    for (const auto& m : c["record"]["messages"]) assistants += m["role"] == "assistant";
    EXPECT_EQ(trained_texts(segments).size(), assistants);
    for (std::size_t i = 0; i < segments.size(); ++i) {
      EXPECT_FALSE(segments[i].text.empty());
      if (i > 0) EXPECT_NE(segments[i].trained, segments[i - 1].trained) << "neighbours share a flag";
      if (!segments[i].trained) continue;
      ASSERT_GT(i, 0u);
      const std::string& before = segments[i - 1].text;
      EXPECT_EQ(before.substr(before.size() - 22), "<|im_start|>assistant\n");
      EXPECT_EQ(segments[i].text.rfind("<|im_end|>"), segments[i].text.size() - 10);
      EXPECT_EQ(segments[i].text.find("<|im_start|>"), std::string::npos);
      ASSERT_LT(i + 1, segments.size());
      EXPECT_EQ(segments[i + 1].text.front(), '\n');
    }
  }
}

TEST(ChatTemplate, SimpleTurnSplitsIntoPromptAnswerAndNewline) {
  const auto segments = render_case(fixture_case("system_user_assistant"));
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0].text,
            "<|im_start|>system\nYou are a careful assistant.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(segments[0].trained);
  EXPECT_EQ(segments[1].text, "<think></think>4<|im_end|>");
  EXPECT_TRUE(segments[1].trained);
  EXPECT_EQ(segments[2].text, "\n");
  EXPECT_FALSE(segments[2].trained);
}

TEST(ChatTemplate, HistoryReasoningIsDroppedAndTheLastTurnKeepsIt) {
  // Dropped reasoning leaves "<think></think>" and the "\n" that followed "</think>".
  EXPECT_EQ(trained_texts(render_case(fixture_case("reasoning_in_history_dropped"))),
            (std::vector<std::string>{"<think></think>\nYes.<|im_end|>",
                                      "<think>\n21 / 3 = 7.\n</think>\nNo, 21 = 3 * 7.<|im_end|>"}));
  EXPECT_EQ(trained_texts(render_case(fixture_case("reasoning_in_history_kept"))),
            (std::vector<std::string>{"<think>\nCheck 2, 3: no.\n</think>\nYes.<|im_end|>",
                                      "<think>\n21 / 3 = 7.\n</think>\nNo, 21 = 3 * 7.<|im_end|>"}));
}

TEST(ChatTemplate, ToolCallTurnIsTrainedAndToolResponsesAreNot) {
  const auto segments = render_case(fixture_case("tool_call_string_arguments"));
  EXPECT_EQ(trained_texts(segments),
            (std::vector<std::string>{
                "<think></think>\n<tool_call>\n<function=get_weather>\n"
                "<parameter=city>\nOslo\n</parameter>\n<parameter=days>\n2\n</parameter>\n"
                "<parameter=fields>\n[\"temp\"]\n</parameter>\n"
                "<parameter=options>\n{\"unit\": \"celsius\", \"precise\": false}\n</parameter>\n"
                "</function>\n</tool_call>\n<|im_end|>",
                "<think></think>3 degrees.<|im_end|>"}));
  const std::string all = joined_text(segments);
  const auto response = all.find("<|im_start|>user\n<tool_response>\ntemp=3\n</tool_response>\n<|im_end|>\n");
  ASSERT_NE(response, std::string::npos);
  for (const auto& s : segments)
    if (s.trained) EXPECT_EQ(s.text.find("<tool_response>"), std::string::npos);
}

TEST(ChatTemplate, GenerationPromptIsNotTrained) {
  const auto on = render_case(fixture_case("user_only_generation_prompt_thinking"));
  ASSERT_FALSE(on.empty());
  EXPECT_FALSE(on.back().trained);
  EXPECT_TRUE(trained_texts(on).empty());
  EXPECT_TRUE(joined_text(on).ends_with("Hello!<|im_end|>\n<|im_start|>assistant\n<think>\n"));
  const auto off = render_case(fixture_case("user_only_generation_prompt_no_thinking"));
  EXPECT_EQ(joined_text(off), "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                              "<|im_start|>assistant\n<think></think>");
}

TEST(ChatTemplate, StringAndObjectArgumentsRenderAlike) {
  const std::string object_args =
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null,
          "tool_calls": [{"function": {"name": "f", "arguments": {"b": [1, {"x": 2.5}], "a": "s"}}}]}]})";
  const std::string string_args =
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null,
          "tool_calls": [{"function": {"name": "f", "arguments": "{\"b\": [1, {\"x\": 2.5}], \"a\": \"s\"}"}}]}]})";
  const auto a = joined_text(render_chat(ordered_json::parse(object_args), {}, "x"));
  EXPECT_EQ(a, joined_text(render_chat(ordered_json::parse(string_args), {}, "x")));
  EXPECT_NE(a.find("<parameter=b>\n[1, {\"x\": 2.5}]\n</parameter>\n<parameter=a>\ns\n</parameter>"), std::string::npos);
  // Parsed as plain nlohmann::json the keys come back sorted, and render in that order.
  const auto sorted = joined_text(render_chat(nlohmann::json::parse(object_args), {}, "x"));
  EXPECT_NE(sorted.find("<parameter=a>\ns\n</parameter>\n<parameter=b>"), std::string::npos);
}

TEST(ChatTemplate, SpecialTokensAreTheMarkersTheTemplateWrites) {
  const auto& tokens = nemokit::sft::chat_special_tokens();
  EXPECT_EQ(tokens.size(), 8u);
  std::string everything;
  for (const auto& c : fixture_cases()) everything += c["rendered"].get<std::string>();
  for (const auto& t : tokens) EXPECT_NE(everything.find(t), std::string::npos) << t;
}

TEST(ChatTemplateErrors, NoMessages) {
  for (const char* record : {R"({"messages": []})", R"({"tools": []})", R"({"messages": {}})"}) {
    const std::string e = error_of(record);
    EXPECT_NE(e.find("data/train.jsonl:7: record: has no messages"), std::string::npos) << record << " -> " << e;
  }
  EXPECT_NE(error_of("[1]").find("data/train.jsonl:7: record: must be a JSON object"), std::string::npos);
}

TEST(ChatTemplateErrors, UnknownRole) {
  const std::string e = error_of(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                       {"role": "robot", "content": "c"}]})");
  EXPECT_NE(e.find("data/train.jsonl:7: message 2: unknown role \"robot\""), std::string::npos) << e;
  EXPECT_NE(error_of(R"({"messages": [{"content": "a"}]})").find("data/train.jsonl:7: message 0: needs a string \"role\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": ["hi"]})").find("message 0: must be an object"), std::string::npos);
}

TEST(ChatTemplateErrors, MissingOrIllTypedContent) {
  EXPECT_NE(error_of(R"({"messages": [{"role": "system", "content": "s"}, {"role": "user"}]})")
                .find("data/train.jsonl:7: message 1: has no content"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": 5}]})")
                .find("data/train.jsonl:7: message 0: content must be a string, not number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null}]})")
                .find("data/train.jsonl:7: message 1: has no content"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "q"},
                                      {"role": "tool", "content": [{"type": "text", "text": "x"}]}]})")
                .find("message 1: content must be a string, not array"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "q"},
                                      {"role": "assistant", "content": "a", "reasoning_content": 3}]})")
                .find("message 1: reasoning_content must be a string"),
            std::string::npos);
  // An assistant message that calls tools needs no content.
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "q"},
                                      {"role": "assistant", "tool_calls": [{"name": "f"}]}]})"),
            "");
}

TEST(ChatTemplateErrors, MalformedToolCalls) {
  const auto with_calls = [](const std::string& calls) {
    return error_of(R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                                      "tool_calls": )" + calls + "}]}");
  };
  EXPECT_NE(with_calls(R"({"name": "f"})").find("data/train.jsonl:7: message 1: tool_calls must be an array"),
            std::string::npos);
  EXPECT_NE(with_calls(R"(["f"])").find("message 1: tool_calls[0]: must be an object"), std::string::npos);
  EXPECT_NE(with_calls(R"([{"name": "f"}, {"function": {"arguments": {}}}])")
                .find("message 1: tool_calls[1]: needs a function name"),
            std::string::npos);
  EXPECT_NE(with_calls(R"([{"function": "f"}])").find("message 1: tool_calls[0]: function must be an object"),
            std::string::npos);
  EXPECT_NE(with_calls(R"([{"name": "f", "arguments": "{not json"}])")
                .find("message 1: tool_calls[0]: arguments string is not valid JSON"),
            std::string::npos);
  EXPECT_NE(with_calls(R"([{"name": "f", "arguments": "[1, 2]"}])")
                .find("message 1: tool_calls[0]: arguments string must hold a JSON object, not array"),
            std::string::npos);
  EXPECT_NE(with_calls(R"([{"name": "f", "arguments": 3}])")
                .find("message 1: tool_calls[0]: arguments must be an object or a JSON string"),
            std::string::npos);
}

TEST(ChatTemplateErrors, MalformedTools) {
  const std::string messages = R"("messages": [{"role": "user", "content": "q"}])";
  EXPECT_NE(error_of("{" + messages + R"(, "tools": {"name": "f"}})").find("data/train.jsonl:7: record: tools must be an array"),
            std::string::npos);
  EXPECT_NE(error_of("{" + messages + R"(, "tools": [{"name": "f"}, {"type": "function", "function": {}}]})")
                .find("data/train.jsonl:7: tools[1]: needs a string \"name\""),
            std::string::npos);
  EXPECT_EQ(error_of("{" + messages + R"(, "tools": null})"), "");
}

TEST(PythonText, FloatsPrintAsPythonRepr) {
  using nemokit::sft::python_float_repr;
  EXPECT_EQ(python_float_repr(0.1), "0.1");
  EXPECT_EQ(python_float_repr(100.0), "100.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(1e-4), "0.0001");
  EXPECT_EQ(python_float_repr(1e-5), "1e-05");
  EXPECT_EQ(python_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1.5e300), "1.5e+300");
  EXPECT_EQ(python_float_repr(123456.789), "123456.789");
  EXPECT_EQ(python_float_repr(2.5e-7), "2.5e-07");
}

TEST(PythonText, StrJsonAndStripFollowPython) {
  using nemokit::sft::python_json;
  using nemokit::sft::python_str;
  using nemokit::sft::python_strip;
  const auto v = ordered_json::parse(R"({"z": ["it's", "say \"hi\"", "tab\t", true, null, 1.0], "a": {"k": false}})");
  EXPECT_EQ(python_str(v), R"({'z': ["it's", 'say "hi"', 'tab\t', True, None, 1.0], 'a': {'k': False}})");
  EXPECT_EQ(python_json(v), R"({"z": ["it's", "say \"hi\"", "tab\t", true, null, 1.0], "a": {"k": false}})");
  EXPECT_EQ(python_json(ordered_json("é\x01\x7f")), "\"é\\u0001\x7f\"");
  EXPECT_EQ(python_strip("\u00a0\u3000 x y\n\u2029"), "x y");
  EXPECT_EQ(python_strip(" \t\n"), "");
}

}  // namespace
