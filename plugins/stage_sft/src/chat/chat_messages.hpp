// A record's messages, checked and read into the few fields the chat template looks at, so that the
// renderer works on known shapes and every format error is raised in one place.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace nemokit::sft {

struct ToolCall {
  std::string name;
  // The arguments as an object, in the record's key order; nullopt when the call has none.
  std::optional<nlohmann::ordered_json> arguments;
};

struct ChatMessage {
  std::size_t index = 0;  // position in the record's "messages", for error messages
  std::string role;       // system, user, assistant or tool
  std::string content;    // "" where an assistant message with tool calls has none
  std::optional<std::string> reasoning;
  std::vector<ToolCall> tool_calls;
};

// Throws ChatFormatError naming origin and the message index. `where` in messages reads
// "<origin>: message <index>: <problem>".
std::vector<ChatMessage> read_messages(const nlohmann::ordered_json& record, const std::string& origin);

// The record's "tools" (absent or null: none), each checked to be an object with a string name,
// unwrapped from {"type": "function", "function": {...}} when wrapped.
std::vector<nlohmann::ordered_json> read_tools(const nlohmann::ordered_json& record, const std::string& origin);

}  // namespace nemokit::sft
