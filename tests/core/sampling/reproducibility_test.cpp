// A sequence's tokens depend only on its logits, parameters and seed: not on other sequences in
// the batch, nor on the order the batch is processed in.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/sampling/sampler.h"

namespace loom {
namespace {

// Deterministic stand-in for a model: logits as a function of the step and a per-sequence salt.
std::vector<float> fake_logits(int step, int salt) {
  std::vector<float> logits(64);
  for (std::size_t i = 0; i < logits.size(); ++i) {
    logits[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) * (salt + 1) + step));
  }
  return logits;
}

struct Sequence {
  SamplingParams params;
  int salt;
  SequenceRng rng;
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> output;

  void step() {
    std::vector<float> logits = fake_logits(static_cast<int>(output.size()), salt);
    output.push_back(sample_token(logits, params, prompt, output, {}, rng));
  }
};

Sequence make_sequence(std::uint64_t seed, int salt) {
  SamplingParams params;
  params.temperature = 1.2;
  params.top_p = 0.9;
  params.top_k = 40;
  params.frequency_penalty = 0.3;
  params.repetition_penalty = 1.1;
  return Sequence{params, salt, SequenceRng(seed), {1, 2, 3}, {}};
}

std::vector<std::int32_t> generate(std::uint64_t seed, int salt, int tokens) {
  Sequence s = make_sequence(seed, salt);
  for (int i = 0; i < tokens; ++i) s.step();
  return s.output;
}

TEST(SamplingReproducibility, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const auto a = generate(1, 0, 200);
  EXPECT_EQ(a, generate(1, 0, 200));
  EXPECT_NE(a, generate(2, 0, 200));
}

TEST(SamplingReproducibility, InterleavingDoesNotChangeASequence) {
  Sequence a = make_sequence(10, 1);
  Sequence b = make_sequence(20, 2);
  b.params.top_k = 0;  // a different filter path uses the shared scratch differently
  b.params.min_p = 0.1;
  for (int i = 0; i < 100; ++i) {
    a.step();
    b.step();
  }
  Sequence a_alone = make_sequence(10, 1);
  for (int i = 0; i < 100; ++i) a_alone.step();
  Sequence b_alone = make_sequence(20, 2);
  b_alone.params = b.params;
  for (int i = 0; i < 100; ++i) b_alone.step();
  EXPECT_EQ(a.output, a_alone.output);
  EXPECT_EQ(b.output, b_alone.output);
  EXPECT_EQ(a.rng.draws(), 100u);
}

}  // namespace
}  // namespace loom
