#include "chat/chat_messages.hpp"

#include "chat/chat_template.hpp"


namespace nemokit::sft {
namespace {

using ordered_json = nlohmann::ordered_json;

[[noreturn]] void fail(const std::string& origin, const std::string& where, const std::string& problem) {
  throw ChatFormatError(origin + ": " + where + ": " + problem);
}

std::string type_name(const ordered_json& value) { return value.type_name(); }

// "arguments" as the template needs it: an object. The OpenAI wire form carries it as a JSON string;
// the template itself would stop on a string (its `arguments|items` takes mappings only), so the
// string is parsed here.
std::optional<ordered_json> read_arguments(const ordered_json& call, const std::string& origin,
                                           const std::string& where) {
  const auto it = call.find("arguments");
  if (it == call.end()) return std::nullopt;
  if (it->is_object()) return *it;
  if (!it->is_string()) fail(origin, where, "arguments must be an object or a JSON string, not " + type_name(*it));
  ordered_json parsed;
  try {
    parsed = ordered_json::parse(it->get_ref<const std::string&>());
  } catch (const ordered_json::parse_error& e) {
    fail(origin, where, std::string("arguments string is not valid JSON (") + e.what() + ")");
  }
  if (!parsed.is_object()) fail(origin, where, "arguments string must hold a JSON object, not " + type_name(parsed));
  return parsed;
}

std::vector<ToolCall> read_tool_calls(const ordered_json& message, const std::string& origin,
                                      const std::string& where) {
  std::vector<ToolCall> calls;
  const auto it = message.find("tool_calls");
  if (it == message.end() || it->is_null()) return calls;
  if (!it->is_array()) fail(origin, where, "tool_calls must be an array, not " + type_name(*it));
  for (std::size_t k = 0; k < it->size(); ++k) {
    const std::string call_where = where + ": tool_calls[" + std::to_string(k) + "]";
    const ordered_json& entry = (*it)[k];
    if (!entry.is_object()) fail(origin, call_where, "must be an object, not " + type_name(entry));
    // Both the OpenAI form {"type": "function", "function": {...}} and the bare {"name", "arguments"}.
    const ordered_json* call = &entry;
    if (const auto fn = entry.find("function"); fn != entry.end()) {
      if (!fn->is_object()) fail(origin, call_where, "function must be an object, not " + type_name(*fn));
      call = &*fn;
    }
    const auto name = call->find("name");
    if (name == call->end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      fail(origin, call_where, "needs a function name (a non-empty string)");
    calls.push_back({name->get<std::string>(), read_arguments(*call, origin, call_where)});
  }
  return calls;
}

// transformers fills reasoning_content from the older names `thinking` and `reasoning` (first one set
// wins), so a record written with either renders the same as one with reasoning_content.
std::optional<std::string> read_reasoning(const ordered_json& message, const std::string& origin,
                                          const std::string& where) {
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    const auto it = message.find(key);
    if (it == message.end() || it->is_null()) continue;
    if (!it->is_string()) fail(origin, where, std::string(key) + " must be a string, not " + type_name(*it));
    return it->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::vector<ChatMessage> read_messages(const ordered_json& record, const std::string& origin) {
  if (!record.is_object()) fail(origin, "record", "must be a JSON object, not " + type_name(record));
  const auto list = record.find("messages");
  if (list == record.end() || !list->is_array() || list->empty())
    fail(origin, "record", "has no messages (\"messages\" must be a non-empty array)");

  std::vector<ChatMessage> messages;
  messages.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string where = "message " + std::to_string(i);
    const ordered_json& raw = (*list)[i];
    if (!raw.is_object()) fail(origin, where, "must be an object, not " + type_name(raw));
    ChatMessage message;
    message.index = i;
    const auto role = raw.find("role");
    if (role == raw.end() || !role->is_string()) fail(origin, where, "needs a string \"role\"");
    message.role = role->get<std::string>();
    if (message.role != "system" && message.role != "user" && message.role != "assistant" && message.role != "tool")
      fail(origin, where, "unknown role \"" + message.role + "\" (expected system, user, assistant or tool)");

    if (message.role == "assistant") {
      message.reasoning = read_reasoning(raw, origin, where);
      message.tool_calls = read_tool_calls(raw, origin, where);
    }
    const auto content = raw.find("content");
    const bool absent = content == raw.end() || content->is_null();
    if (absent && !(message.role == "assistant" && !message.tool_calls.empty()))
      fail(origin, where, "has no content (a " + message.role + " message needs a string \"content\")");
    if (!absent && !content->is_string())
      fail(origin, where, "content must be a string, not " + type_name(*content));
    if (!absent) message.content = content->get<std::string>();
    messages.push_back(std::move(message));
  }
  return messages;
}

std::vector<ordered_json> read_tools(const ordered_json& record, const std::string& origin) {
  std::vector<ordered_json> tools;
  const auto list = record.find("tools");
  if (list == record.end() || list->is_null()) return tools;
  if (!list->is_array()) fail(origin, "record", "tools must be an array, not " + type_name(*list));
  for (std::size_t k = 0; k < list->size(); ++k) {
    const std::string where = "tools[" + std::to_string(k) + "]";
    const ordered_json& entry = (*list)[k];
    if (!entry.is_object()) fail(origin, where, "must be an object, not " + type_name(entry));
    const ordered_json* tool = &entry;
    if (const auto fn = entry.find("function"); fn != entry.end()) {
      if (!fn->is_object()) fail(origin, where, "function must be an object, not " + type_name(*fn));
      tool = &*fn;
    }
    const auto name = tool->find("name");
    if (name == tool->end() || !name->is_string()) fail(origin, where, "needs a string \"name\"");
    tools.push_back(*tool);
  }
  return tools;
}

}  // namespace nemokit::sft
