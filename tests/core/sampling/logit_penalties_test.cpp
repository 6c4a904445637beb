#include "core/sampling/logit_penalties.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "loom/error.h"

namespace loom {
namespace {

TEST(LogitPenalties, RepetitionDividesPositiveAndMultipliesNegativeOncePerToken) {
  std::vector<float> logits = {2.0f, -1.0f, 3.0f, -4.0f, 5.0f, 0.0f};
  const std::vector<std::int32_t> prompt = {0, 1, 1, 5};
  const std::vector<std::int32_t> output = {3, 0, 3};
  apply_repetition_penalty(logits, 2.0f, prompt, output);
  EXPECT_FLOAT_EQ(logits[0], 1.0f);   // prompt and output, positive: divided once
  EXPECT_FLOAT_EQ(logits[1], -2.0f);  // prompt twice, negative: multiplied once
  EXPECT_FLOAT_EQ(logits[2], 3.0f);   // unseen
  EXPECT_FLOAT_EQ(logits[3], -8.0f);  // output, negative
  EXPECT_FLOAT_EQ(logits[4], 5.0f);   // unseen
  EXPECT_FLOAT_EQ(logits[5], 0.0f);   // zero stays zero
}

TEST(LogitPenalties, RepetitionPenaltyOfOneChangesNothing) {
  std::vector<float> logits = {1.5f, -2.5f};
  const std::vector<std::int32_t> seen = {0, 1};
  apply_repetition_penalty(logits, 1.0f, seen, seen);
  EXPECT_EQ(logits, (std::vector<float>{1.5f, -2.5f}));
}

TEST(LogitPenalties, PresenceOnceFrequencyPerOccurrenceOutputOnly) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<std::int32_t> output = {2, 0, 2, 2};
  apply_presence_frequency_penalties(logits, 0.5f, 0.25f, output);
  EXPECT_FLOAT_EQ(logits[0], 1.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f - 0.5f - 0.75f);
  EXPECT_FLOAT_EQ(logits[3], 1.0f);
}

TEST(LogitPenalties, OutOfVocabularyIdsAreRequestErrors) {
  std::vector<float> logits(4, 0.0f);
  const std::vector<std::int32_t> bad = {4};
  const std::vector<std::int32_t> none;
  EXPECT_THROW(apply_repetition_penalty(logits, 1.2f, bad, none), RequestError);
  EXPECT_THROW(apply_presence_frequency_penalties(logits, 0.1f, 0.0f, bad), RequestError);
}

TEST(LogitPenalties, SuppressSetsMinusInfinityAndSkipsForeignIds) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const std::vector<std::int32_t> ids = {1, 99, -1};
  suppress_tokens(logits, ids);
  EXPECT_EQ(logits[1], -std::numeric_limits<float>::infinity());
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 3.0f);
}

}  // namespace
}  // namespace loom
