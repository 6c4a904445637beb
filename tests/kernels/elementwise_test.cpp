#include "loom/kernels/cpu/elementwise.h"

#include <cstring>

#include "kernel_test_util.h"

namespace loom::kernels::cpu {
namespace {

using loom::testing::poisoned;
using loom::testing::random_floats;
using loom::testing::relative_error;

TEST(RmsNorm, MatchesFloat64ReferenceAndIsBatchInvariant) {
  std::mt19937 rng(3);
  for (int D : {1, 7, 64, 288, 1001}) {
    const int M = 9;
    auto x = random_floats(static_cast<std::size_t>(M) * D, rng, 3.0f);
    auto w = random_floats(D, rng);
    auto y = poisoned(x.size());
    rmsnorm(x.data(), w.data(), M, D, 1e-5f, y.data());
    std::vector<double> ref(y.size());
    for (int m = 0; m < M; ++m) {
      double ss = 0;
      for (int i = 0; i < D; ++i) ss += double(x[m * D + i]) * x[m * D + i];
      double inv = 1.0 / std::sqrt(ss / D + 1e-5);
      for (int i = 0; i < D; ++i) ref[m * D + i] = x[m * D + i] * inv * w[i];
    }
    EXPECT_LE(relative_error(y, ref), 1e-6) << D;
    std::vector<float> alone(D);
    rmsnorm(x.data() + 4 * D, w.data(), 1, D, 1e-5f, alone.data());
    EXPECT_EQ(0, std::memcmp(alone.data(), y.data() + 4 * D, D * sizeof(float)));
  }
}

TEST(RmsNorm, MayRunInPlace) {
  std::mt19937 rng(4);
  auto x = random_floats(300, rng);
  auto w = random_floats(100, rng);
  std::vector<float> out(300), in_place = x;
  rmsnorm(x.data(), w.data(), 3, 100, 1e-6f, out.data());
  rmsnorm(in_place.data(), w.data(), 3, 100, 1e-6f, in_place.data());
  EXPECT_EQ(out, in_place);
}

TEST(SiluAndMul, MatchesFloat64Reference) {
  std::mt19937 rng(5);
  for (int n : {1, 13, 5000}) {
    auto gate = random_floats(n, rng, 4.0f), up = random_floats(n, rng);
    auto out = poisoned(n);
    silu_and_mul(gate.data(), up.data(), n, out.data());
    std::vector<double> ref(n);
    for (int i = 0; i < n; ++i) ref[i] = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
    EXPECT_LE(relative_error(out, ref), 1e-6) << n;
  }
}

TEST(Softmax, MatchesFloat64ReferenceEvenForLargeLogits) {
  std::mt19937 rng(6);
  for (int N : {1, 2, 33, 512}) {
    auto x = random_floats(static_cast<std::size_t>(3) * N, rng, 30.0f);
    std::vector<double> ref(x.size());
    for (int m = 0; m < 3; ++m) {
      double mx = -1e300, sum = 0;
      for (int i = 0; i < N; ++i) mx = std::max(mx, double(x[m * N + i]));
      for (int i = 0; i < N; ++i) sum += ref[m * N + i] = std::exp(x[m * N + i] - mx);
      for (int i = 0; i < N; ++i) ref[m * N + i] /= sum;
    }
    softmax(x.data(), 3, N);
    EXPECT_LE(relative_error(x, ref), 1e-6) << N;
  }
}

TEST(Embedding, CopiesRowsAndReportsTheFirstBadIdWithoutWriting) {
  std::vector<float> table = {0, 1, 10, 11, 20, 21};
  std::vector<std::int32_t> ids = {2, 0, 2};
  std::vector<float> out(6);
  EXPECT_EQ(embedding(table.data(), 3, 2, ids.data(), 3, out.data()), -1);
  EXPECT_EQ(out, (std::vector<float>{20, 21, 0, 1, 20, 21}));
  std::vector<std::int32_t> bad = {1, 3, -1};
  auto untouched = poisoned(6);
  EXPECT_EQ(embedding(table.data(), 3, 2, bad.data(), 3, untouched.data()), 1);
  EXPECT_TRUE(std::isnan(untouched[0]));
}

}  // namespace
}  // namespace loom::kernels::cpu
