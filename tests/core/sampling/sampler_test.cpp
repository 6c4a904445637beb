#include "core/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <vector>

namespace loom {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<std::int32_t> kNone;

// Samples `draws` times from fresh copies of `logits` (sample_token edits its input) with no
// history, and returns how often each token came out.
std::vector<int> histogram(const std::vector<float>& logits, const SamplingParams& params,
                           int draws, std::uint64_t seed = 1) {
  SequenceRng rng(seed);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> scratch = logits;
    const std::int32_t token = sample_token(scratch, params, kNone, kNone, kNone, rng);
    EXPECT_GE(token, 0);
    EXPECT_LT(static_cast<std::size_t>(token), logits.size());
    ++counts[static_cast<std::size_t>(token)];
  }
  EXPECT_EQ(rng.draws(), static_cast<std::uint64_t>(draws)) << "exactly one draw per token";
  return counts;
}

// Pearson's chi-square statistic of `counts` against the probabilities `expected`.
double chi_square(const std::vector<int>& counts, const std::vector<double>& expected, int draws) {
  double chi2 = 0.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability zero";
      continue;
    }
    const double e = expected[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

SamplingParams at_temperature(double t) {
  SamplingParams p;
  p.temperature = t;
  return p;
}

TEST(Sampler, GreedyIsArgmaxLowestIdOnTiesWithoutDrawing) {
  SequenceRng rng(5);
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.0f};
  EXPECT_EQ(sample_token(logits, SamplingParams{}, kNone, kNone, kNone, rng), 1);
  std::vector<float> with_nan = {std::nanf(""), -kInf, 0.5f, std::nanf("")};
  EXPECT_EQ(sample_token(with_nan, SamplingParams{}, kNone, kNone, kNone, rng), 2);
  EXPECT_EQ(rng.draws(), 0u);
}

TEST(Sampler, WithoutPenaltiesSampleTokenIsTheDrawGivenToSampleWithUniform) {
  // The engine hands devices the draw (OutputRow::uniform); both paths must give the same token.
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f, 0.7f, std::nanf(""), 1.5f, -kInf};
  SamplingParams params = at_temperature(0.9);
  params.top_k = 5;
  params.top_p = 0.8;
  params.min_p = 0.02;
  SequenceRng rng(11), copy(11);
  std::set<std::int32_t> seen;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> scratch = logits;
    const std::int32_t token = sample_token(scratch, params, kNone, kNone, kNone, rng);
    EXPECT_EQ(sample_with_uniform(logits, params, copy.next_uniform()), token);
    seen.insert(token);
  }
  EXPECT_GE(seen.size(), 3u);
  EXPECT_EQ(sample_with_uniform(logits, SamplingParams{}, 0.99), 1) << "temperature 0 is greedy";
}

TEST(Sampler, TemperatureFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, -3.0f};
  for (double t : {0.7, 1.0, 2.5}) {
    std::vector<double> expected;
    double total = 0.0;
    for (float l : logits) total += std::exp(l / t);
    for (float l : logits) expected.push_back(std::exp(l / t) / total);
    constexpr int kDraws = 20000;
    const auto counts = histogram(logits, at_temperature(t), kDraws);
    // 5 degrees of freedom: P(chi2 > 30) is about 1.5e-5 for a correct sampler.
    EXPECT_LT(chi_square(counts, expected, kDraws), 30.0) << "temperature " << t;
  }
}

TEST(Sampler, TopKNeverSamplesOutsideTheKBest) {
  std::vector<float> logits;
  SequenceRng values(11);
  for (int i = 0; i < 200; ++i) logits.push_back(static_cast<float>(values.next_uniform() * 4.0));
  SamplingParams params = at_temperature(3.0);
  params.top_k = 5;
  std::vector<std::size_t> order(logits.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  const std::set<std::size_t> best(order.begin(), order.begin() + 5);
  const auto counts = histogram(logits, params, 5000);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (best.count(i)) {
      EXPECT_GT(counts[i], 0) << "token " << i << " is among the k best";
    } else {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the k best";
    }
  }
}

TEST(Sampler, TopKBreaksTiesByLowerId) {
  SamplingParams params = at_temperature(1.0);
  params.top_k = 3;
  const auto counts = histogram(std::vector<float>(10, 0.0f), params, 3000);
  for (std::size_t i = 0; i < counts.size(); ++i) EXPECT_EQ(counts[i] > 0, i < 3) << i;
}

TEST(Sampler, TopPKeepsTheMinimalNucleus) {
  // Ids deliberately not in probability order.
  const std::vector<double> probs = {0.15, 0.5, 0.1, 0.25};
  const auto logits = log_probs(probs);
  constexpr int kDraws = 20000;
  struct Case { double top_p; std::vector<double> expected; };
  const std::vector<Case> cases = {
      {0.4, {0.0, 1.0, 0.0, 0.0}},                          // 0.5 already >= 0.4
      {0.7, {0.0, 0.5 / 0.75, 0.0, 0.25 / 0.75}},           // 0.5 < 0.7 <= 0.75
      {0.8, {0.15 / 0.9, 0.5 / 0.9, 0.0, 0.25 / 0.9}},      // 0.75 < 0.8 <= 0.9
      {1.0, probs},
  };
  for (const Case& c : cases) {
    SamplingParams params = at_temperature(1.0);
    params.top_p = c.top_p;
    const auto counts = histogram(logits, params, kDraws);
    EXPECT_LT(chi_square(counts, c.expected, kDraws), 30.0) << "top_p " << c.top_p;
  }
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMostLikely) {
  const std::vector<double> probs = {0.05, 0.3, 0.5, 0.15};
  const auto logits = log_probs(probs);
  constexpr int kDraws = 20000;
  SamplingParams params = at_temperature(1.0);
  params.min_p = 0.2;  // threshold 0.1: only the 0.05 token goes
  EXPECT_LT(chi_square(histogram(logits, params, kDraws), {0.0, 0.3 / 0.95, 0.5 / 0.95, 0.15 / 0.95},
                       kDraws), 30.0);
  params.min_p = 0.5;  // threshold 0.25
  EXPECT_LT(chi_square(histogram(logits, params, kDraws), {0.0, 0.3 / 0.8, 0.5 / 0.8, 0.0}, kDraws),
            30.0);
}

TEST(Sampler, MinTokensSuppressesEosAndStopIds) {
  const std::vector<float> logits = {0.0f, 1.0f, 9.0f, 8.0f, 7.0f};  // 2 = EOS, 3 = stop id
  const std::vector<std::int32_t> eos = {2};
  SamplingParams params;
  params.min_tokens = 2;
  params.stop_token_ids = {3};
  SequenceRng rng(1);
  const std::vector<std::int32_t> one = {4};
  const std::vector<std::int32_t> two = {4, 4};
  std::vector<float> scratch = logits;
  EXPECT_EQ(sample_token(scratch, params, kNone, one, eos, rng), 4);
  scratch = logits;
  EXPECT_EQ(sample_token(scratch, params, kNone, two, eos, rng), 2) << "min_tokens reached";
  params.ignore_eos = true;  // EOS is then not a stop token and is not held back
  scratch = logits;
  EXPECT_EQ(sample_token(scratch, params, kNone, one, eos, rng), 2);
  params.ignore_eos = false;
  params.temperature = 1.0;  // also when sampling: suppressed tokens never come out
  for (int i = 0; i < 500; ++i) {
    scratch = logits;
    const std::int32_t token = sample_token(scratch, params, kNone, one, eos, rng);
    EXPECT_NE(token, 2);
    EXPECT_NE(token, 3);
  }
}

TEST(Sampler, PenaltiesChangeTheGreedyChoice) {
  SequenceRng rng(1);
  SamplingParams params;
  params.repetition_penalty = 2.0;
  const std::vector<std::int32_t> prompt = {0};
  std::vector<float> logits = {3.0f, 2.0f};
  EXPECT_EQ(sample_token(logits, params, prompt, kNone, kNone, rng), 1);  // 3/2 < 2
  params.repetition_penalty = 1.0;
  params.frequency_penalty = 0.6;
  const std::vector<std::int32_t> output = {0, 0};
  logits = {3.0f, 2.0f};
  EXPECT_EQ(sample_token(logits, params, kNone, output, kNone, rng), 1);  // 3 - 1.2 < 2
  params.frequency_penalty = 0.0;
  params.presence_penalty = 0.5;
  logits = {3.0f, 2.0f};
  EXPECT_EQ(sample_token(logits, params, kNone, output, kNone, rng), 0);  // 2.5 > 2
}

TEST(Sampler, NonFiniteLogitsNeverEscape) {
  SamplingParams params = at_temperature(1.0);
  std::vector<float> logits = {-kInf, 1.0f, std::nanf(""), 0.5f, -kInf};
  auto counts = histogram(logits, params, 2000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], counts[3]);

  // All -inf but one: that one, with every filter on.
  params.top_k = 3;
  params.top_p = 0.5;
  params.min_p = 0.5;
  counts = histogram({-kInf, -kInf, -kInf, 4.0f, -kInf}, params, 100);
  EXPECT_EQ(counts[3], 100);

  // +inf tokens share the mass; the rest get none.
  counts = histogram({1.0f, kInf, 2.0f, kInf}, at_temperature(1.0), 2000);
  EXPECT_EQ(counts[0] + counts[2], 0);
  EXPECT_GT(counts[1], 800);
  EXPECT_GT(counts[3], 800);

  // Nothing samplable: the documented fallback, still one draw.
  counts = histogram({-kInf, -kInf}, at_temperature(1.0), 10);
  EXPECT_EQ(counts[0], 10);

  // A tiny temperature acts like greedy instead of overflowing.
  counts = histogram({1.0f, 1.001f, -5.0f}, at_temperature(1e-30), 100);
  EXPECT_EQ(counts[1], 100);
}

TEST(Sampler, LargeVocabularyStaysInRange) {
  constexpr std::size_t kVocab = 128 * 1024;
  std::vector<float> logits(kVocab);
  SequenceRng values(3);
  for (float& l : logits) l = static_cast<float>(values.next_uniform() * 20.0 - 10.0);
  SamplingParams plain = at_temperature(0.8);
  SamplingParams filtered = plain;
  filtered.top_k = 50;
  filtered.top_p = 0.9;
  SamplingParams nucleus = plain;
  nucleus.top_p = 0.95;
  for (const SamplingParams* p : {&plain, &filtered, &nucleus}) {
    SequenceRng rng(1);
    constexpr int kCalls = 20;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) {
      std::vector<float> scratch = logits;
      const std::int32_t token = sample_token(scratch, *p, kNone, kNone, kNone, rng);
      ASSERT_GE(token, 0);
      ASSERT_LT(static_cast<std::size_t>(token), kVocab);
    }
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::printf("vocab %zu top_k %d top_p %.2f: %.3f ms per token (incl. copy)\n", kVocab, p->top_k,
                p->top_p, took.count() / kCalls);
  }
}

}  // namespace
}  // namespace loom
