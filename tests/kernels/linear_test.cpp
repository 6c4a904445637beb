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
  const int K = 291, N = 203, M = 37, probe = 22;
  auto x = random_floats(static_cast<std::size_t>(M) * K, rng);
  auto w = random_floats(static_cast<std::size_t>(N) * K, rng);
  std::vector<float> alone(N), batched(static_cast<std::size_t>(M) * N), batched_one_thread(batched.size());
  linear(x.data() + probe * K, 1, K, w.data(), N, nullptr, alone.data());
  linear(x.data(), M, K, w.data(), N, nullptr, batched.data());
  set_num_threads(1);
  linear(x.data(), M, K, w.data(), N, nullptr, batched_one_thread.data());
  set_num_threads(3);
  std::vector<float> three_threads(batched.size());
  linear(x.data(), M, K, w.data(), N, nullptr, three_threads.data());
  set_num_threads(0);
  EXPECT_EQ(0, std::memcmp(alone.data(), batched.data() + probe * N, N * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(batched.data(), batched_one_thread.data(), batched.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(batched.data(), three_threads.data(), batched.size() * sizeof(float)));
}

}  // namespace
}  // namespace loom::kernels::cpu
