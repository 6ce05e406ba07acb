#include "nemokit/runtime/model_cli.hpp"

#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "nemokit/runtime/checkpoint.hpp"
#include "nemokit/runtime/generate.hpp"
#include "nemokit/runtime/tokenizer.hpp"

namespace nemokit::rt {
namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --key value pairs after the positional arguments; every key must be in `allowed`.
struct Options {
  std::vector<std::string> positional;
  std::map<std::string, std::string> named;

  Options(const std::vector<std::string>& args, size_t from, const std::vector<std::string>& allowed) {
    for (size_t i = from; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.rfind("--", 0) != 0) {
        positional.push_back(a);
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), a) == allowed.end()) throw UsageError("unknown option " + a);
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      named[a] = args[++i];
    }
  }
  bool has(const std::string& k) const { return named.count(k) > 0; }
  std::string get(const std::string& k) const { return named.at(k); }

  template <class T> T number(const std::string& k, T fallback) const {
    if (!has(k)) return fallback;
    const std::string& s = named.at(k);
    T value{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size()) throw UsageError(k + ": '" + s + "' is not a valid number");
    return value;
  }
};

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
    std::cout << tok->decode(out) << "\n";
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
  if (args.empty()) {
    std::cerr << "nemokit model: expected a subcommand (generate, init)\n";
    return 2;
  }
  try {
    if (args[0] == "generate") return cmd_generate(args);
    if (args[0] == "init") return cmd_init(args);
    std::cerr << "nemokit model " << args[0] << ": not implemented yet\n";
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
