// The Nemotron 3 Nano chat template ("nano3"), rendered natively: the same bytes transformers'
// apply_chat_template produces with the template NVIDIA ships in the model repo
// (tests/sft/fixtures/nemotron3_nano_chat_template.jinja), cut into segments that say which text the
// assistant produces, which is what SFT computes its loss on.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace nemokit::sft {

// A record the template cannot render, or renders into something no one meant: the message names
// the origin ("file:line") and the index of the message (or tool) at fault.
class ChatFormatError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct ChatSegment {
  std::string text;
  bool trained;  // text the assistant produces (see render_chat)
};

struct RenderOptions {
  // Only changes the generation prompt: "<think>\n" opens a reasoning block, "<think></think>" skips it.
  bool enable_thinking = true;
  bool add_generation_prompt = false;
  // The template's own switch, on by default there: assistant turns before the last user message lose
  // their reasoning and keep "<think></think>" plus the answer.
  bool truncate_history_thinking = true;
};

// record: one JSONL line in the OpenAI messages form,
//   {"messages": [{"role": "system|user|assistant|tool", "content": ..., "reasoning_content"?: ...,
//                  "tool_calls"?: [...]}], "tools"?: [...]}
// Parse it as ordered_json: the template lists tool-call arguments and tool schema keys in the order
// the record gives them. A tool call's "arguments" may be an object or a JSON string holding one.
// The segments concatenate to the template's output byte for byte; neighbours never share a flag.
// Throws ChatFormatError for: no messages, an unknown role, missing or ill-typed content (an assistant
// message with tool calls may have none), ill-typed reasoning, malformed tool_calls or tools.
std::vector<ChatSegment> render_chat(const nlohmann::ordered_json& record, const RenderOptions& options,
                                     const std::string& origin);
// The same for a record parsed as plain nlohmann::json, whose objects come back with sorted keys, so
// argument and schema keys render in alphabetical order.
std::vector<ChatSegment> render_chat(const nlohmann::json& record, const RenderOptions& options,
                                     const std::string& origin);

std::string joined_text(const std::vector<ChatSegment>& segments);

// The markers the template writes around turns, reasoning, tool calls and tool responses, which a
// tokenizer must keep whole rather than split into pieces: <|im_start|>, <|im_end|>, <think>, </think>,
// <tool_call>, </tool_call>, <tool_response>, </tool_response>. The rest of the tool syntax
// (<function=...>, <parameter=...>, <tools>) is ordinary text.
const std::vector<std::string>& chat_special_tokens();

}  // namespace nemokit::sft
