#pragma once
// The tool-call protocol of multi-turn rollouts (super3 rl swe2), in the Nemotron 3 chat
// template's own format, so a model SFT-trained on tool calls needs nothing new:
//   the model writes   <tool_call>\n<function=run>\n<parameter=command>\nCMD\n</parameter>\n
//                      </function>\n</tool_call>
//   the environment runs CMD in the task's sandboxed repository, and the context goes on with the
//   tool turn exactly as the template renders a "tool" message after that assistant message:
//                      \n<|im_start|>user\n<tool_response>\nOUTPUT\n</tool_response>\n<|im_end|>\n
//                      <|im_start|>assistant\n<think></think>      (the generation prompt)
// A turn without a tool call is the final answer.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace nemokit::rl::swe {

struct ToolCallRequest {
  std::string function;                       // "" when the block has no <function=...>
  std::map<std::string, std::string> params;  // parameter name -> value (one "\n" each side dropped)
  std::string error;                          // not empty: the block could not be read, and why
};

// The first complete <tool_call>...</tool_call> block of a model turn; nullopt when there is none
// (an opened block never closed is no call: the turn is an answer).
std::optional<ToolCallRequest> find_tool_call(std::string_view turn);

// The text that follows a model turn holding a tool call, up to the next generation prompt:
// "\n<|im_end|>" first when the turn stopped at "</tool_call>" without closing itself, then the
// tool turn rendered by the chat template (the SFT stage's renderer) for `output`.
std::string tool_turn_text(const std::string& output, bool turn_closed, bool enable_thinking);

// `text` cut to `max_chars`: its first and last halves with a note of how much was left out.
std::string shorten(const std::string& text, size_t max_chars);

}  // namespace nemokit::rl::swe
