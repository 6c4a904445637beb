// The float64 reference forward is itself checked against the independent greedy continuations
// shipped with stories260K, so that the model tests compare against something known right.
#include "reference_forward.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/io/model_loader.h"
#include "support/test_models.h"

namespace loom::testing {
namespace {

TEST(ReferenceForward, ReproducesTheShippedStories260KContinuations) {
  const auto dir = test_models_dir();
  ASSERT_TRUE(std::filesystem::exists(dir / "stories260K.bin")) << "shared models not found at " << dir
                                                                 << "; set LOOM_TEST_MODELS";
  io::LoadedModel model = io::load_model(dir / "stories260K.bin");
  nlohmann::json cases = nlohmann::json::parse(std::ifstream(dir / "stories260K.greedy.json"));
  for (const auto& [name, item] : cases.items()) {
    auto prompt = item["prompt_token_ids"].get<std::vector<std::int32_t>>();
    auto expected = item["output_token_ids"].get<std::vector<std::int32_t>>();
    const int steps = 12;  // the reference recomputes everything per token: keep it short
    expected.resize(steps);
    EXPECT_EQ(reference_greedy(model, prompt, steps), expected) << name;
  }
}

}  // namespace
}  // namespace loom::testing
