#include "prep/sft_prep_config.hpp"

#include "nemokit/runtime/run/paths.hpp"
#include "nemokit/runtime/run/table_reader.hpp"

#include <stdexcept>

namespace nemokit::sft {

SftPrepConfig SftPrepConfig::from_json(const nlohmann::json& data) {
  SftPrepConfig c;
  rt::TableReader t(data, "data");
  std::vector<std::string> inputs, validation;
  t.strings("inputs", inputs);
  t.strings("validation", validation);
  if (inputs.empty()) t.fail("inputs", "required: the chat JSONL files to train on");
  for (const auto& s : inputs) c.inputs.push_back(rt::expand_home(s));
  for (const auto& s : validation) c.validation.push_back(rt::expand_home(s));
  t.number("valid_fraction", c.valid_fraction);
  if (!(c.valid_fraction >= 0 && c.valid_fraction < 1)) t.fail("valid_fraction", "must be in [0, 1)");
  t.string("chat_template", c.chat_template);
  if (c.chat_template != "nano3")
    t.fail("chat_template", "unknown template \"" + c.chat_template + "\" (expected \"nano3\", the Nemotron 3 template)");
  t.boolean("enable_thinking", c.enable_thinking);
  t.integer("pack_size", c.pack_size, 16);
  std::string packer = packer_name(c.packer);
  t.string("packer", packer);
  c.packer = parse_packer(packer);
  t.boolean("skip_bad_records", c.skip_bad_records);
  int64_t seed = int64_t(c.seed);
  t.integer("seed", seed, 0);
  c.seed = uint64_t(seed);
  std::string tokenizer, output;
  t.string("tokenizer", tokenizer);
  if (!tokenizer.empty()) c.tokenizer = rt::expand_home(tokenizer);
  t.string("name", c.name);
  t.string("output", output);
  if (!output.empty()) c.output = rt::expand_home(output);
  t.get("media");  // MediaOptions reads it, with the [model] encoders (from_config)
  t.no_unknown_keys();
  return c;
}

SftPrepConfig SftPrepConfig::from_config(const nlohmann::json& config) {
  if (!config.contains("data")) throw std::invalid_argument("data: the table is missing");
  SftPrepConfig c = from_json(config["data"]);
  c.media = MediaOptions::from_config(config);
  return c;
}

}  // namespace nemokit::sft
