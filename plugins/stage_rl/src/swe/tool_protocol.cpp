#include "swe/tool_protocol.hpp"

#include "chat/chat_template.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace nemokit::rl::swe {

namespace {

constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
constexpr std::string_view kFunction = "<function=", kFunctionEnd = "</function>";
constexpr std::string_view kParam = "<parameter=", kParamEnd = "</parameter>";

// The template writes each value between newlines; the value is what lies between them.
std::string unwrap(std::string_view v) {
  if (!v.empty() && v.front() == '\n') v.remove_prefix(1);
  if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
  return std::string(v);
}

}  // namespace

std::optional<ToolCallRequest> find_tool_call(std::string_view turn) {
  const size_t open = turn.find(kOpen);
  if (open == std::string_view::npos) return std::nullopt;
  const size_t close = turn.find(kClose, open + kOpen.size());
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view body = turn.substr(open + kOpen.size(), close - open - kOpen.size());
  ToolCallRequest call;
  const size_t fn = body.find(kFunction);
  if (fn == std::string_view::npos) {
    call.error = "the <tool_call> block names no <function=...>";
    return call;
  }
  const size_t name_end = body.find('>', fn);
  if (name_end == std::string_view::npos) {
    call.error = "the <function=...> tag is not closed with '>'";
    return call;
  }
  call.function = std::string(body.substr(fn + kFunction.size(), name_end - fn - kFunction.size()));
  std::string_view rest = body.substr(name_end + 1);
  if (const size_t end = rest.find(kFunctionEnd); end != std::string_view::npos) rest = rest.substr(0, end);
  for (size_t p = rest.find(kParam); p != std::string_view::npos; p = rest.find(kParam)) {
    const size_t key_end = rest.find('>', p);
    const size_t value_end = key_end == std::string_view::npos ? key_end : rest.find(kParamEnd, key_end);
    if (value_end == std::string_view::npos) {
      call.error = "a <parameter=...> is not closed with </parameter>";
      return call;
    }
    const std::string key(rest.substr(p + kParam.size(), key_end - p - kParam.size()));
    call.params[key] = unwrap(rest.substr(key_end + 1, value_end - key_end - 1));
    rest = rest.substr(value_end + kParamEnd.size());
  }
  return call;
}

std::string tool_turn_text(const std::string& output, bool turn_closed, bool enable_thinking) {
  // A conversation ending in an assistant tool call and its result; the text after the assistant's
  // (trained) turn is the tool turn plus the generation prompt.
  nlohmann::ordered_json record = {
      {"messages",
       {{{"role", "user"}, {"content", "-"}},
        {{"role", "assistant"}, {"content", ""}, {"tool_calls", {{{"name", "run"}, {"arguments", {{"command", "-"}}}}}}},
        {{"role", "tool"}, {"content", output}}}}};
  sft::RenderOptions ro;
  ro.enable_thinking = enable_thinking;
  ro.add_generation_prompt = true;
  const std::vector<sft::ChatSegment> seg = sft::render_chat(record, ro, "tool turn");
  if (seg.empty() || seg.back().trained) throw std::logic_error("tool_turn_text: the template rendered no tool turn");
  return (turn_closed ? "" : "\n<|im_end|>") + seg.back().text;
}

std::string shorten(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  const size_t head = max_chars / 2, tail = max_chars - head;
  return text.substr(0, head) + "\n[... " + std::to_string(text.size() - head - tail) + " characters left out ...]\n" +
         text.substr(text.size() - tail);
}

}  // namespace nemokit::rl::swe
