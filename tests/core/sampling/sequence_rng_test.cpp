#include "core/sampling/sequence_rng.h"

#include <gtest/gtest.h>

#include <vector>

namespace loom {
namespace {

TEST(SequenceRng, UniformsLieInUnitIntervalAndCountDraws) {
  SequenceRng rng(42);
  double sum = 0.0;
  constexpr int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = rng.next_uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_EQ(rng.draws(), static_cast<std::uint64_t>(kDraws));
  EXPECT_NEAR(sum / kDraws, 0.5, 0.005);  // standard error is ~0.0009
}

TEST(SequenceRng, SameSeedSameStreamDifferentSeedDifferentStream) {
  SequenceRng a(7), b(7), c(8);
  int equal_to_other_seed = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    equal_to_other_seed += x == c.next_u64() ? 1 : 0;
  }
  EXPECT_EQ(equal_to_other_seed, 0);
}

TEST(SequenceRng, ResumingAtADrawCountContinuesTheStream) {
  SequenceRng full(123);
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 10; ++i) values.push_back(full.next_u64());
  SequenceRng resumed(123, 6);
  for (int i = 6; i < 10; ++i) EXPECT_EQ(resumed.next_u64(), values[static_cast<std::size_t>(i)]);
  EXPECT_EQ(resumed.draws(), 10u);
}

TEST(SequenceRng, DerivedSeedsDifferByIndexAndRunSeed) {
  EXPECT_NE(derive_seed(1, 0), derive_seed(1, 1));
  EXPECT_NE(derive_seed(1, 0), derive_seed(2, 0));
  EXPECT_EQ(derive_seed(5, 9), derive_seed(5, 9));
}

}  // namespace
}  // namespace loom
