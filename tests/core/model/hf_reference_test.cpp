// Loom's CPU path against Hugging Face transformers itself: tiny random models of every supported
// architecture and config layout, saved by transformers, and the greedy continuations
// transformers computed for them in fp32 (tests/data/hf_reference, docs/model-formats.md). The
// continuations must match token for token, and the logits after each prompt within fp32 error.
#include <cmath>

#include <gtest/gtest.h>

#include "core/io/model_loader.h"
#include "hf_reference.h"
#include "model_harness.h"

namespace loom::testing {
namespace {

class HfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(HfReference, CpuGreedyTokensAndFirstLogitsMatchTransformers) {
  const HfReferenceCase ref = load_hf_reference(GetParam());
  ASSERT_FALSE(ref.prompts.empty()) << ref.folder;
  const io::LoadedModel model = io::load_model(ref.folder);
  std::vector<std::vector<std::int32_t>> prompts;
  int steps = 0;
  for (const auto& p : ref.prompts) {
    prompts.push_back(p.prompt);
    steps = std::max(steps, static_cast<int>(p.output.size()));
  }
  // All prompts decoded together (batch of several lengths), then each alone for its logits.
  ModelHarness batch(model, 16, 8, 256);
  const auto outputs = batch.greedy(prompts, steps);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<std::int32_t> got(outputs[i].begin(), outputs[i].begin() + ref.prompts[i].output.size());
    EXPECT_EQ(got, ref.prompts[i].output)
        << ref.name << ", prompt " << i << " (transformers " << ref.transformers_version << ")";
    ModelHarness alone(model, 16, 1, 256);
    const std::vector<float> logits = alone.step({{0, prompts[i]}})[0].back();
    const std::vector<float>& expected = ref.prompts[i].first_logits;
    ASSERT_EQ(logits.size(), expected.size());
    double err = 0, norm = 0;
    for (std::size_t v = 0; v < logits.size(); ++v) {
      err += (logits[v] - double(expected[v])) * (logits[v] - double(expected[v]));
      norm += double(expected[v]) * expected[v];
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-5) << ref.name << ", prompt " << i << ": logits after the prompt";
  }
}

INSTANTIATE_TEST_SUITE_P(EveryArchitectureAndLayout, HfReference, ::testing::ValuesIn(hf_reference_cases()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace loom::testing
