// The template's logic, step by step, in the order it writes text. Names in comments (content,
// include_content, last_user_idx, ...) are the template's own, so the two can be read side by side.
//
// Which text is trained: SFT teaches the model to produce assistant turns, so the loss covers exactly
// what a model generates once the prompt ends in "<|im_start|>assistant\n": the reasoning block as the
// template rendered it (the full "<think>\n...\n</think>\n" in the last turns, "<think></think>" in
// truncated history), the answer, the tool calls, and the closing "<|im_end|>" (the model must learn to
// stop). The "<|im_start|>assistant\n" header is prompt, given to the model at inference, and the "\n"
// after "<|im_end|>" is never generated (decoding stops at <|im_end|>), so neither is trained. System,
// user and tool turns and the generation prompt are input, not output.
#include "chat/chat_template.hpp"

#include "chat/chat_messages.hpp"
#include "chat/python_text.hpp"

#include <string_view>

namespace nemokit::sft {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr std::string_view kEmptyThink = "<think></think>";

// What the template tells the model about the tool-call format, after the tool list (verbatim).
constexpr std::string_view kToolInstructions =
    "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\n"
    "multiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be "
    "nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function "
    "call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>";

// Appends text to the segment list, merging with the last segment when the flag is the same.
class SegmentWriter {
 public:
  void add(std::string_view text, bool trained) {
    if (text.empty()) return;
    if (!segments_.empty() && segments_.back().trained == trained) {
      segments_.back().text.append(text);
    } else {
      segments_.push_back({std::string(text), trained});
    }
  }
  std::vector<ChatSegment> take() { return std::move(segments_); }

 private:
  std::vector<ChatSegment> segments_;
};

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

// Python's text.split(sep)[-1]: what follows the last separator.
std::string_view after_last(std::string_view text, std::string_view sep) {
  const auto pos = text.rfind(sep);
  return pos == std::string_view::npos ? text : text.substr(pos + sep.size());
}

// Python's text.split(sep)[0]: what precedes the first separator.
std::string_view before_first(std::string_view text, std::string_view sep) { return text.substr(0, text.find(sep)); }

// A JSON value where the template writes `x | tojson` for mappings and lists and `x | string` otherwise
// (tool-call argument values, and schema keys it has no tag of its own for).
std::string value_text(const ordered_json& value) {
  return value.is_object() || value.is_array() ? python_json(value) : python_str(value);
}

// The template's render_extra_keys macro: every key not in `handled`, as <key>value</key>.
void render_extra_keys(std::string& out, const ordered_json& dict, std::initializer_list<std::string_view> handled) {
  if (!dict.is_object()) return;
  for (const auto& [key, value] : dict.items()) {
    bool skip = false;
    for (const auto h : handled) skip = skip || key == h;
    if (skip) continue;
    out += "\n<" + key + ">" + value_text(value) + "</" + key + ">";
  }
}

// One tool's <function> block in the system prompt. `tool` is already unwrapped from {"function": ...}.
void render_tool(std::string& out, const ordered_json& tool) {
  out += "\n<function>\n<name>" + python_str(tool["name"]) + "</name>";
  if (tool.contains("description")) out += "\n<description>" + python_strip(python_str(tool["description"])) + "</description>";
  out += "\n<parameters>";
  const auto params = tool.find("parameters");
  const bool params_object = params != tool.end() && params->is_object();
  if (params_object) {
    const auto props = params->find("properties");
    if (props != params->end() && props->is_object()) {
      for (const auto& [name, fields] : props->items()) {
        out += "\n<parameter>\n<name>" + name + "</name>";
        // A property that is not an object has none of the keys below; the template then writes its name only.
        if (fields.is_object()) {
          if (fields.contains("type")) out += "\n<type>" + python_str(fields["type"]) + "</type>";
          if (fields.contains("description"))
            out += "\n<description>" + python_strip(python_str(fields["description"])) + "</description>";
          if (fields.contains("enum")) out += "\n<enum>" + python_json(fields["enum"]) + "</enum>";
          render_extra_keys(out, fields, {"name", "type", "description", "enum"});
        }
        out += "\n</parameter>";
      }
    }
    render_extra_keys(out, *params, {"type", "properties", "required"});
    if (params->contains("required")) out += "\n<required>" + python_json((*params)["required"]) + "</required>";
  }
  out += "\n</parameters>";
  render_extra_keys(out, tool, {"type", "name", "description", "parameters"});
  out += "\n</function>";
}

// The system turn. The template writes it even when the record has no system message: system_message
// is then "" (defined), so every conversation opens with "<|im_start|>system\n".
void render_system(SegmentWriter& w, const std::string& system_message, const std::vector<ordered_json>& tools) {
  std::string out = "<|im_start|>system\n" + system_message;
  if (!tools.empty()) {
    if (!system_message.empty()) out += "\n\n";
    out += "# Tools\n\nYou have access to the following functions:\n\n<tools>";
    for (const auto& tool : tools) render_tool(out, tool);
    out += "\n</tools>";
    out += kToolInstructions;
  }
  out += "<|im_end|>\n";
  w.add(out, false);
}

// <tool_call> blocks. Argument values: lists and objects as JSON, everything else as Python prints it.
void append_tool_calls(std::string& out, const std::vector<ToolCall>& calls) {
  for (const auto& call : calls) {
    out += "<tool_call>\n<function=" + call.name + ">\n";
    if (call.arguments) {
      for (const auto& [name, value] : call.arguments->items())
        out += "<parameter=" + name + ">\n" + value_text(value) + "\n</parameter>\n";
    }
    out += "</function>\n</tool_call>\n";
  }
}

void render_assistant(SegmentWriter& w, const ChatMessage& m, bool in_truncated_history) {
  // The template folds reasoning into content first: "<think>\n{reasoning}\n</think>\n{content}" when
  // the reasoning is not blank, else content as written, given an empty "<think></think>" unless the
  // writer already put think tags in it.
  std::string content;
  if (m.reasoning && !python_strip(*m.reasoning).empty()) {
    content = "<think>\n" + *m.reasoning + "\n</think>\n" + m.content;
  } else {
    content = m.content;
    if (!contains(content, kThinkOpen) && !contains(content, kThinkClose)) content = std::string(kEmptyThink) + content;
  }

  std::string out;
  if (!m.tool_calls.empty()) {
    if (!python_strip(content).empty()) {
      if (!in_truncated_history) {  // include_content
        out += python_strip(content) + "\n";
      } else {
        // History keeps what follows the last </think> (or precedes an unclosed <think>), stripped.
        std::string_view c = content;
        if (contains(c, kThinkClose)) c = after_last(c, kThinkClose);
        else if (contains(c, kThinkOpen)) c = before_first(c, kThinkOpen);
        out += std::string(kEmptyThink) + python_strip(c) + "\n";
      }
    } else {
      out += kEmptyThink;
    }
    append_tool_calls(out, m.tool_calls);
  } else if (!in_truncated_history) {
    out += python_strip(content);
  } else {
    std::string c = content;
    if (contains(c, kThinkOpen) && contains(c, kThinkClose)) c = std::string(kEmptyThink) + std::string(after_last(c, kThinkClose));
    out += python_strip(c);
  }
  w.add("<|im_start|>assistant\n", false);
  w.add(out + "<|im_end|>", true);
  w.add("\n", false);
}

std::vector<ChatSegment> render(const ordered_json& record, const RenderOptions& options, const std::string& origin) {
  const std::vector<ChatMessage> all = read_messages(record, origin);
  const std::vector<ordered_json> tools = read_tools(record, origin);

  // A leading system message becomes the system prompt; the loop covers the rest (loop_messages).
  const bool leading_system = all.front().role == "system";
  const std::vector<ChatMessage> loop(all.begin() + (leading_system ? 1 : 0), all.end());
  // last_user_idx, counted within loop_messages; assistant turns before it are history.
  long last_user_idx = -1;
  for (std::size_t i = 0; i < loop.size(); ++i)
    if (loop[i].role == "user") last_user_idx = static_cast<long>(i);

  SegmentWriter w;
  render_system(w, leading_system ? all.front().content : std::string(), tools);

  for (std::size_t i = 0; i < loop.size(); ++i) {
    const ChatMessage& m = loop[i];
    if (m.role == "assistant") {
      render_assistant(w, m, options.truncate_history_thinking && static_cast<long>(i) < last_user_idx);
    } else if (m.role == "tool") {
      // Consecutive tool results share one user turn. The opening header needs a previous message that
      // is not a tool result, so a tool result first in the loop gets none (as the template does).
      std::string out;
      if (i > 0 && loop[i - 1].role != "tool") out += "<|im_start|>user\n";
      out += "<tool_response>\n" + m.content + "\n</tool_response>\n";
      if (i + 1 == loop.size() || loop[i + 1].role != "tool") out += "<|im_end|>\n";
      w.add(out, false);
    } else {  // user, or a system message after the first
      w.add("<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n", false);
    }
  }

  if (options.add_generation_prompt)
    w.add(options.enable_thinking ? "<|im_start|>assistant\n<think>\n" : "<|im_start|>assistant\n<think></think>", false);
  return w.take();
}

}  // namespace

std::vector<ChatSegment> render_chat(const ordered_json& record, const RenderOptions& options,
                                     const std::string& origin) {
  return render(record, options, origin);
}

std::vector<ChatSegment> render_chat(const nlohmann::json& record, const RenderOptions& options,
                                     const std::string& origin) {
  return render(ordered_json(record), options, origin);
}

std::string joined_text(const std::vector<ChatSegment>& segments) {
  std::string out;
  for (const auto& s : segments) out += s.text;
  return out;
}

const std::vector<std::string>& chat_special_tokens() {
  static const std::vector<std::string> tokens = {"<|im_start|>", "<|im_end|>",    "<think>",         "</think>",
                                                  "<tool_call>",  "</tool_call>", "<tool_response>", "</tool_response>"};
  return tokens;
}

}  // namespace nemokit::sft
