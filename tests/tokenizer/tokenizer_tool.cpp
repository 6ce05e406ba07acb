// `nemokit tokenizer ...` as a standalone program: tokenizer_tool train|encode|decode ...
#include <nemokit/runtime/tokenizer.hpp>

int main(int argc, char** argv) {
  return nemokit::rt::tokenizer_command(std::vector<std::string>(argv + 1, argv + argc));
}
