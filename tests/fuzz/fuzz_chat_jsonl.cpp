// Chat JSONL records (SFT data): each line that is JSON goes through render_chat, the checks of
// messages and tools and the chat template, with thinking on and off.
#include "fuzz_support.hpp"

#include "chat/chat_template.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  size_t line = 0;
  for (size_t start = 0; start < input.size(); ++line) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    const auto record = nlohmann::ordered_json::parse(input.substr(start, end - start), nullptr, false);
    start = end + 1;
    if (record.is_discarded()) continue;  // JSON syntax is the JSON library's to check
    for (bool thinking : {true, false}) {
      nemokit::sft::RenderOptions options;
      options.enable_thinking = thinking;
      options.add_generation_prompt = !thinking;
      nemokit::fuzz::expect_only<nemokit::sft::ChatFormatError>(input, [&] {
        const auto segments = nemokit::sft::render_chat(record, options, "chat.jsonl:" + std::to_string(line + 1));
        (void)nemokit::sft::joined_text(segments);
      });
    }
  }
  return 0;
}
