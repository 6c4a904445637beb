#include "loom/kernels/cpu/moe_routing.h"

#include <numeric>

#include "kernel_test_util.h"

namespace loom::kernels::cpu {
namespace {

TEST(MoeRouting, HandCheckedCaseWithTiesGoesToTheLowerIndex) {
  // Experts 1 and 3 tie for the top; 1 comes first. softmax of {0, 2, 1, 2}.
  std::vector<float> logits = {0, 2, 1, 2};
  std::vector<std::int32_t> ids(2);
  std::vector<float> w(2);
  route_top_k(logits.data(), 1, 4, 2, false, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<std::int32_t>{1, 3}));
  const double z = 1 + 2 * std::exp(2.0) + std::exp(1.0);
  EXPECT_NEAR(w[0], std::exp(2.0) / z, 1e-7);
  route_top_k(logits.data(), 1, 4, 2, true, ids.data(), w.data());
  EXPECT_NEAR(w[0], 0.5, 1e-7);
  EXPECT_NEAR(w[1], 0.5, 1e-7);
}

TEST(MoeRouting, RandomCasesPickTheMostProbableExpertsInOrder) {
  std::mt19937 rng(9);
  const int T = 50, E = 8, k = 3;
  auto logits = loom::testing::random_floats(T * E, rng, 2.0f);
  std::vector<std::int32_t> ids(T * k);
  std::vector<float> w(T * k);
  route_top_k(logits.data(), T, E, k, true, ids.data(), w.data());
  for (int t = 0; t < T; ++t) {
    std::vector<int> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[t * E + a] > logits[t * E + b]; });
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(ids[t * k + j], order[j]);
      sum += w[t * k + j];
      if (j) {
        EXPECT_GE(w[t * k + j - 1], w[t * k + j]);
      }
    }
    EXPECT_NEAR(sum, 1.0f, 1e-6);
  }
}

}  // namespace
}  // namespace loom::kernels::cpu
