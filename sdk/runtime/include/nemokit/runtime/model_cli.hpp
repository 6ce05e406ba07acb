// `nemokit model ...`: command-line entry to the runtime.
//   generate MODEL_DIR (--prompt-ids "1 2 3" | --prompt TEXT --tokenizer T.json)
//            [--max-new-tokens N --temperature T --top-k K --top-p P --seed S --stop-ids "2 3"]
//   init --config config.json --out DIR [--seed S]
//   export CKPT_DIR --out DIR [--dtype bf16|fp32]   Hugging Face folder (default bf16), LoRA merged,
//          tokenizer files from CKPT_DIR or the folder above; no optimizer state
//   import HF_DIR --out DIR                         to the training layout (fp32), from bf16 or fp32,
//          Hub or transformers 5 names (stacked experts)
//   lora-merge CKPT_DIR --out DIR                   LoRA checkpoint -> merged fp32 model folder
//   adapter-export CKPT_DIR --out DIR               PEFT adapter (adapter_config.json,
//          adapter_model.safetensors) for transformers' NemotronH; routed experts through
//          target_parameters; Mamba out_proj adapters are left out (PEFT refuses them)
// Output folders appear atomically (DIR.tmp, then a rename).
// args excludes the word "model". Returns the exit status; errors are one line on stderr.
#pragma once
#include <string>
#include <vector>

namespace nemokit::rt {

int model_command(const std::vector<std::string>& args);

}  // namespace nemokit::rt
