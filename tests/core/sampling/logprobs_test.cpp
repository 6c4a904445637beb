// token_logprobs against a plain float64 log-softmax: the chosen token's value, the top n in order
// (ties to the lower id), NaN and -inf logits, top_n beyond the vocabulary, an all-NaN row.
#include "core/sampling/logprobs.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace loom {
namespace {

std::vector<double> reference_log_softmax(const std::vector<float>& logits) {
  double max = -INFINITY, sum = 0;
  for (float x : logits)
    if (!std::isnan(x)) max = std::max(max, double(x));
  for (float x : logits)
    if (!std::isnan(x)) sum += std::exp(double(x) - max);
  std::vector<double> out;
  for (float x : logits) out.push_back(std::isnan(x) ? -INFINITY : double(x) - max - std::log(sum));
  return out;
}

TEST(Logprobs, MatchAFloat64LogSoftmaxWithTheTopNInOrder) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int vocab : {1, 5, 512, 32000}) {
    std::vector<float> logits(vocab);
    for (float& x : logits) x = normal(rng);
    if (vocab > 5) logits[2] = logits[4] = 30.0f;  // a tie at the top: 2 before 4
    const std::vector<double> want = reference_log_softmax(logits);
    for (int top_n : {0, 1, 5, 20}) {
      const std::int32_t token = vocab - 1;
      const TokenLogprobs got = token_logprobs(logits, token, top_n);
      EXPECT_EQ(got.token, token);
      EXPECT_NEAR(got.logprob, want[token], 1e-12);
      ASSERT_EQ(got.top.size(), std::min<std::size_t>(top_n, vocab));
      for (std::size_t i = 0; i < got.top.size(); ++i) {
        EXPECT_NEAR(got.top[i].second, want[got.top[i].first], 1e-12);
        if (i > 0) {
          EXPECT_GE(got.top[i - 1].second, got.top[i].second);
        }
      }
      if (vocab > 5 && top_n >= 2) {
        EXPECT_EQ(got.top[0].first, 2);
        EXPECT_EQ(got.top[1].first, 4);
      }
    }
  }
}

TEST(Logprobs, NanAndMinusInfinityAreImpossibleTokensAndAnEmptyRowIsMinusInfinity) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits = {nan, 1.0f, -inf, 1.0f};
  const TokenLogprobs got = token_logprobs(logits, 0, 4);
  EXPECT_EQ(got.logprob, -INFINITY);
  EXPECT_NEAR(got.top[0].second, std::log(0.5), 1e-12);
  EXPECT_EQ(got.top[0].first, 1);
  EXPECT_EQ(got.top[1].first, 3);
  EXPECT_EQ(got.top[2].second, -INFINITY);
  EXPECT_EQ(token_logprobs(logits, 9, 0).logprob, -INFINITY) << "a token outside the row";
  const TokenLogprobs none = token_logprobs(std::vector<float>{nan, -inf}, 1, 2);
  EXPECT_EQ(none.logprob, -INFINITY);
  EXPECT_EQ(none.top[0].second, -INFINITY);
}

}  // namespace
}  // namespace loom
