// linear(): float64 reference on ragged shapes with poisoned outputs, and bit-exact batch and
// thread-count invariance.
#include "loom/kernels/cpu/linear.h"

#include <cstring>

#include "kernel_test_util.h"
#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {
namespace {

using loom::testing::poisoned;
using loom::testing::random_floats;
using loom::testing::relative_error;

TEST(Linear, MatchesFloat64ReferenceOnRaggedShapes) {
  std::mt19937 rng(7);
  for (int K : {1, 7, 8, 15, 16, 17, 64, 255, 288, 1000}) {
    for (int M : {1, 3, 4, 5, 17}) {
      for (int N : {1, 5, 300}) {
        auto x = random_floats(static_cast<std::size_t>(M) * K, rng);
        auto w = random_floats(static_cast<std::size_t>(N) * K, rng);
        auto b = random_floats(N, rng);
        for (bool with_bias : {false, true}) {
          auto y = poisoned(static_cast<std::size_t>(M) * N);
          linear(x.data(), M, K, w.data(), N, with_bias ? b.data() : nullptr, y.data());
          std::vector<double> ref(y.size());
          for (int m = 0; m < M; ++m)
            for (int n = 0; n < N; ++n) {
              double acc = with_bias ? b[n] : 0.0;
              for (int k = 0; k < K; ++k) acc += double(x[m * K + k]) * w[n * K + k];
              ref[m * N + n] = acc;
            }
          // fp32 accumulation of K unit-variance products: error ~ sqrt(K) ulp; 1e-5 has margin.
          EXPECT_LE(relative_error(y, ref), 1e-5) << "M " << M << " K " << K << " N " << N;
        }
      }
    }
  }
}

TEST(Linear, ARowIsBitIdenticalAloneInAnyBatchAndWithAnyThreadCount) {
  std::mt19937 rng(11);
  // K = 4100 makes M = 37 take two passes over W (rows_per_pass = 28), so the pass split too
  // must leave a row's arithmetic alone.
  for (int K : {291, 4100}) {
    const int N = K > 1000 ? 37 : 203, M = 37;
    auto x = random_floats(static_cast<std::size_t>(M) * K, rng);
    auto w = random_floats(static_cast<std::size_t>(N) * K, rng);
    auto b = random_floats(N, rng);
    std::vector<std::vector<float>> batched;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      batched.push_back(poisoned(static_cast<std::size_t>(M) * N));
      linear(x.data(), M, K, w.data(), N, b.data(), batched.back().data());
      for (int probe : {0, 22, 36}) {
        auto alone = poisoned(N);
        linear(x.data() + static_cast<std::size_t>(probe) * K, 1, K, w.data(), N, b.data(), alone.data());
        EXPECT_EQ(0, std::memcmp(alone.data(), batched.back().data() + probe * N, N * sizeof(float)))
            << "K " << K << " row " << probe << " threads " << threads;
      }
      // Any sub-batch [3, 20): rows change tile positions (row 3 leads a tile there).
      auto sub = poisoned(static_cast<std::size_t>(17) * N);
      linear(x.data() + 3 * static_cast<std::size_t>(K), 17, K, w.data(), N, b.data(), sub.data());
      EXPECT_EQ(0, std::memcmp(sub.data(), batched.back().data() + 3 * N, sub.size() * sizeof(float)));
    }
    set_num_threads(0);
    for (const auto& other : batched)
      EXPECT_EQ(0, std::memcmp(batched[0].data(), other.data(), other.size() * sizeof(float))) << "K " << K;
  }
}

TEST(Linear, LargeShapesMatchFloat64Reference) {
  std::mt19937 rng(12);
  const int M = 64, K = 2048, N = 70;
  auto x = random_floats(static_cast<std::size_t>(M) * K, rng);
  auto w = random_floats(static_cast<std::size_t>(N) * K, rng);
  auto y = poisoned(static_cast<std::size_t>(M) * N);
  linear(x.data(), M, K, w.data(), N, nullptr, y.data());
  std::vector<double> ref(y.size());
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += double(x[m * K + k]) * w[n * K + k];
      ref[m * N + n] = acc;
    }
  EXPECT_LE(relative_error(y, ref), 1e-5);
}

}  // namespace
}  // namespace loom::kernels::cpu
