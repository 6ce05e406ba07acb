#include "nemokit/runtime/model_cli.hpp"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "model_cli_options.hpp"
#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::rt {
namespace {
using cli::Options;
using cli::UsageError;

std::vector<int32_t> parse_ids(const std::string& option, const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    int32_t id = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec != std::errc() || end != word.data() + word.size() || id < 0)
      throw UsageError(option + ": '" + word + "' is not a token id");
    ids.push_back(id);
  }
  return ids;
}

int cmd_generate(const std::vector<std::string>& args) {
  Options o(args, 1,
            {"--prompt-ids", "--prompt", "--tokenizer", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed",
             "--stop-ids"});
  if (o.positional.size() != 1) throw UsageError("generate needs exactly one MODEL_DIR");
  if (o.has("--prompt-ids") == o.has("--prompt")) throw UsageError("give either --prompt-ids or --prompt");
  if (o.has("--prompt") && !o.has("--tokenizer")) throw UsageError("--prompt needs --tokenizer T.json");
  SamplingOptions s;
  s.max_new_tokens = o.number<int64_t>("--max-new-tokens", 32);
  s.temperature = o.number<float>("--temperature", 1.0f);
  s.top_k = o.number<int64_t>("--top-k", 0);
  s.top_p = o.number<float>("--top-p", 1.0f);
  s.seed = o.number<uint64_t>("--seed", 0);
  if (s.temperature < 0) throw UsageError("--temperature must not be negative");
  if (s.top_p <= 0 || s.top_p > 1) throw UsageError("--top-p must be in (0, 1]");
  if (s.max_new_tokens < 0 || s.top_k < 0) throw UsageError("--max-new-tokens and --top-k must not be negative");
  if (o.has("--stop-ids")) s.stop_tokens = parse_ids("--stop-ids", o.get("--stop-ids"));

  std::optional<Tokenizer> tok;
  std::vector<int32_t> prompt;
  if (o.has("--prompt")) {
    tok = Tokenizer::load(o.get("--tokenizer"));
    prompt = tok->encode(o.get("--prompt"));
  } else {
    prompt = parse_ids("--prompt-ids", o.get("--prompt-ids"));
  }
  if (prompt.empty()) throw UsageError("the prompt has no tokens");
  auto model = load_pretrained(o.positional[0]);
  if (!o.has("--stop-ids")) s.stop_tokens = {int32_t(model->config().eos_token_id)};
  for (int32_t id : prompt)
    if (id >= model->config().vocab_size)
      throw UsageError("prompt token " + std::to_string(id) + " is outside the model's vocabulary (" +
                       std::to_string(model->config().vocab_size) + ")");
  auto out = generate(*model, {prompt}, s)[0];
  if (tok) {
    std::cout << tok->decode_generated(out) << "\n";
  } else {
    for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? " " : "") << out[i];
    std::cout << "\n";
  }
  return 0;
}

int cmd_init(const std::vector<std::string>& args) {
  Options o(args, 1, {"--config", "--out", "--seed"});
  if (!o.positional.empty()) throw UsageError("init takes no positional arguments");
  if (!o.has("--config") || !o.has("--out")) throw UsageError("init needs --config config.json and --out DIR");
  NemotronH model(NemotronHConfig::load(o.get("--config")));
  model.init_weights(o.number<uint64_t>("--seed", 0));
  save_pretrained(model, o.get("--out"));
  int64_t count = 0;
  for (Parameter* p : model.parameters()) count += p->value.numel();
  std::cout << "wrote " << o.get("--out") << " (" << count << " parameters)\n";
  return 0;
}

// Each subcommand's usage line and what it does; `nemokit model --help` prints them all,
// `nemokit model SUB --help` its own.
struct Usage {
  const char* name;
  const char* usage;
};
constexpr Usage kUsages[] = {
    {"generate",
     "generate MODEL_DIR (--prompt-ids \"1 2 3\" | --prompt TEXT --tokenizer T.json)\n"
     "          [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop-ids \"2 3\"]\n"
     "      continue a prompt with a model folder (defaults: 32 tokens, temperature 1, stop at the EOS id)"},
    {"init", "init --config config.json --out DIR [--seed S]\n      a model folder with freshly initialised weights"},
    {"export",
     "export CKPT_DIR --out DIR [--dtype bf16|fp32]\n"
     "      a Hugging Face folder (default bf16; LoRA merged; tokenizer files beside it; no optimizer state)"},
    {"import", "import HF_DIR --out DIR\n      a Hugging Face NemotronH folder (bf16 or fp32) into the training layout (fp32)"},
    {"lora-merge", "lora-merge CKPT_DIR --out DIR\n      a LoRA checkpoint merged into a full fp32 model folder"},
    {"adapter-export",
     "adapter-export CKPT_DIR --out DIR\n      a LoRA checkpoint as a PEFT adapter (adapter_config.json, adapter_model.safetensors)"},
    // Served by nemokit's core (the eval stage, plugins/stage_eval), listed here with the rest.
    {"eval",
     "eval MODEL [MODEL...] [--family nano3|super3|omni3] [-c CONFIG] [--run PROFILE] [key=value]...\n"
     "      perplexity, task and chat accuracy of the models side by side (`nemokit eval FAMILY --help`)"},
};

void print_usage(std::ostream& out, const std::string& only = "") {
  bool first = true;
  for (const auto& u : kUsages) {
    if (!only.empty() && only != u.name) continue;
    out << (first ? "usage: nemokit model " : "       nemokit model ") << u.usage << "\n";
    first = false;
  }
}

bool is_help(const std::string& w) { return w == "--help" || w == "-h" || w == "help"; }

}  // namespace

int model_command(const std::vector<std::string>& args) {
  const char* expected = "generate, init, export, import, lora-merge, adapter-export";
  if (args.empty() || is_help(args[0])) {
    if (args.empty()) std::cerr << "nemokit model: expected a subcommand (" << expected << ")\n";
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  // --help or -h anywhere after the subcommand, except as the value of an option (--prompt -h).
  for (size_t i = 1; i < args.size(); ++i)
    if ((args[i] == "--help" || args[i] == "-h") && !args[i - 1].starts_with("--") &&
        std::any_of(std::begin(kUsages), std::end(kUsages), [&](const Usage& u) { return args[0] == u.name; })) {
      print_usage(std::cout, args[0]);
      return 0;
    }
  try {
    if (args[0] == "generate") return cmd_generate(args);
    if (args[0] == "init") return cmd_init(args);
    if (args[0] == "export") return cli::cmd_export(args);
    if (args[0] == "import") return cli::cmd_import(args);
    if (args[0] == "lora-merge") return cli::cmd_lora_merge(args);
    if (args[0] == "adapter-export") return cli::cmd_adapter_export(args);
    std::cerr << "nemokit model: unknown subcommand " << args[0] << " (expected: " << expected << ")\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "nemokit model " << args[0] << ": " << e.what() << " (see `nemokit model " << args[0] << " --help`)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nemokit model " << args[0] << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nemokit::rt
