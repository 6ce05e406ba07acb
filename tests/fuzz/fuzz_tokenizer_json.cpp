// tokenizer.json (ByteLevel BPE): load, encode, decode what was encoded, write it back.
#include "fuzz_support.hpp"

#include "nemokit/runtime/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nemokit::fuzz::expect_only<std::runtime_error>(text, [&] {
    const auto tok = nemokit::rt::Tokenizer::from_json(text, "tokenizer.json");
    for (const char* sample : {"Hello world!", " 12 + 34 = 46\n", "\xc3\xa9t\xc3\xa9 <|im_end|>", ""}) {
      const auto ids = tok.encode(sample);
      (void)tok.decode(ids);
      (void)tok.decode_generated(ids, true);
    }
    (void)tok.to_json();
  });
  return 0;
}
