// The eval stage's table and labels on the plugin's own code.
#include "results.hpp"

#include <gtest/gtest.h>

using namespace nemokit::eval;

TEST(EvalTable, OneColumnPerModelAndADashForWhatAModelHasNot) {
  ModelResult a{"sft/step_0000800", "/c/sft/step_0000800", "/c/sft", 1.0,
                {{"perplexity/test", "perplexity, test split", 41.25, 30592, "tokens", 3},
                 {"chats/all", "chats: exact match", 0.5, 10, "items", 3}}};
  ModelResult b{"omni/step_0000600", "/c/omni/step_0000600", "/c/omni", 1.0,
                {{"perplexity/test", "perplexity, test split", 40.5, 30592, "tokens", 3},
                 {"chats/fashion", "  fashion", 0.875, 8, "items", 3}}};
  const std::string t = side_by_side({a, b});
  EXPECT_EQ(t,
            "                                       sft/step_0000800  omni/step_0000600\n"
            "perplexity, test split (30592 tokens)            41.250             40.500\n"
            "chats: exact match (10 items)                     0.500                  -\n"
            "  fashion (8 items)                                   -              0.875\n")
      << t;
  const auto j = b.to_json();
  EXPECT_EQ(j["metrics"]["chats/fashion"]["value"], 0.875);
  EXPECT_EQ(j["metrics"]["chats/fashion"]["count"], 8);
  EXPECT_EQ(j["path"], "/c/omni/step_0000600");
}

TEST(EvalTable, ModelLabelIsTheLastTwoFolders) {
  EXPECT_EQ(model_label("/root/.cache/nemokit/checkpoints/nano3-sft-tiny/step_0000800"), "nano3-sft-tiny/step_0000800");
  EXPECT_EQ(model_label("/models/hf-model/"), "models/hf-model");
  EXPECT_EQ(model_label("model"), "model");
}
