// The platform-independent randomness: SplitMix64's reference values, log/exp against the C
// library, and Zipf frequencies.
#include "core/workloads/seeded_random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace loom::workloads {
namespace {

TEST(SeededRandom, MatchesSplitMix64Reference) {
  // The first outputs of splitmix64.c (Vigna) seeded with 0.
  SeededRandom random(0);
  EXPECT_EQ(random.next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(random.next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(random.next(), 0x06c45d188009454fULL);
}

TEST(SeededRandom, BetweenStaysInBoundsAndReachesBoth) {
  SeededRandom random(42);
  bool saw_lo = false;
  bool saw_hi = false;
  for (int i = 0; i < 1000; ++i) {
    std::int64_t v = random.between(3, 9);
    ASSERT_TRUE(v >= 3 && v <= 9) << v;
    saw_lo = saw_lo || v == 3;
    saw_hi = saw_hi || v == 9;
  }
  EXPECT_TRUE(saw_lo && saw_hi);
  EXPECT_EQ(random.between(5, 5), 5);
}

TEST(SeededRandom, StreamsDifferByPurpose) {
  EXPECT_NE(SeededRandom::stream(1, 1).next(), SeededRandom::stream(1, 2).next());
  EXPECT_NE(SeededRandom::stream(1, 1).next(), SeededRandom::stream(2, 1).next());
  EXPECT_EQ(SeededRandom::stream(1, 1).next(), SeededRandom::stream(1, 1).next());
}

TEST(PortableMath, LogAndExpAgreeWithTheCLibrary) {
  for (double x : {1e-300, 1e-9, 0.001, 0.5, 0.7071, 1.0, 1.5, 2.0, 3.14159, 1e6, 1e300}) {
    EXPECT_NEAR(portable_log(x), std::log(x), 1e-14 * std::max(1.0, std::fabs(std::log(x)))) << x;
  }
  EXPECT_EQ(portable_log(1.0), 0.0);
  for (double x : {-700.0, -20.0, -1.1, -0.5, 0.0, 0.3, 1.0, 10.0, 700.0}) {
    EXPECT_NEAR(portable_exp(x) / std::exp(x), 1.0, 1e-14) << x;
  }
}

TEST(PortableMath, ExponentialHasTheRightMean) {
  SeededRandom random(9);
  double sum = 0;
  for (int i = 0; i < 20000; ++i) sum += random.exponential(4.0);
  EXPECT_NEAR(sum / 20000, 0.25, 0.01);
}

TEST(ZipfSampler, FrequenciesFollowThePowerLaw) {
  ZipfSampler zipf(3, 1.0);  // P = 1, 1/2, 1/3 over 11/6: 0.545, 0.273, 0.182
  SeededRandom random(1);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) ++counts[zipf.draw(random)];
  EXPECT_NEAR(counts[0] / 30000.0, 6.0 / 11.0, 0.015);
  EXPECT_NEAR(counts[1] / 30000.0, 3.0 / 11.0, 0.015);
  EXPECT_NEAR(counts[2] / 30000.0, 2.0 / 11.0, 0.015);
  ZipfSampler uniform(4, 0.0);
  std::vector<int> flat(4, 0);
  for (int i = 0; i < 40000; ++i) ++flat[uniform.draw(random)];
  for (int c : flat) EXPECT_NEAR(c / 40000.0, 0.25, 0.015);
}

}  // namespace
}  // namespace loom::workloads
