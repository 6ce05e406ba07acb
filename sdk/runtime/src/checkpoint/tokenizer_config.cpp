// tokenizer_config.json: what AutoTokenizer reads first in a model folder. It names the fast
// tokenizer class (the one that reads tokenizer.json) and the model's special tokens by text.
#include "nemokit/runtime/checkpoint.hpp"

namespace nemokit::rt {

nlohmann::json tokenizer_config_json(const Tokenizer& tokenizer, const NemotronHConfig& config) {
  nlohmann::json tc = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"clean_up_tokenization_spaces", false}};
  for (auto [key, id] : {std::pair{"bos_token", config.bos_token_id}, std::pair{"eos_token", config.eos_token_id},
                         std::pair{"pad_token", config.pad_token_id}})
    if (auto t = tokenizer.id_to_token(int32_t(id))) tc[key] = *t;
  return tc;
}

}  // namespace nemokit::rt
