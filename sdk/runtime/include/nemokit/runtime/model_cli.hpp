// `nemokit model ...`: command-line entry to the runtime.
//   generate MODEL_DIR (--prompt-ids "1 2 3" | --prompt TEXT --tokenizer T.json)
//            [--max-new-tokens N --temperature T --top-k K --top-p P --seed S --stop-ids "2 3"]
//   init --config config.json --out DIR [--seed S]
// args excludes the word "model". Returns the exit status; errors are one line on stderr.
#pragma once
#include <string>
#include <vector>

namespace nemokit::rt {

int model_command(const std::vector<std::string>& args);

}  // namespace nemokit::rt
