#include "nemokit/runtime/model_cli.hpp"

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

}  // namespace

int model_command(const std::vector<std::string>& args) {
  const char* expected = "generate, init, export, import, lora-merge, adapter-export";
  if (args.empty()) {
    std::cerr << "nemokit model: expected a subcommand (" << expected << ")\n";
    return 2;
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
    std::cerr << "nemokit model " << args[0] << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "nemokit model " << args[0] << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nemokit::rt
