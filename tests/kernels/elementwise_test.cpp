#include "loom/kernels/cpu/elementwise.h"

#include <cstring>

#include "kernel_test_util.h"
#include "loom/kernels/cpu/parallel_for.h"

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


std::vector<double> rmsnorm_reference(const std::vector<float>& x, const std::vector<float>& w, int M, int D, double eps) {
  std::vector<double> ref(x.size());
  for (int m = 0; m < M; ++m) {
    double ss = 0;
    for (int i = 0; i < D; ++i) ss += double(x[m * D + i]) * x[m * D + i];
    const double inv = 1.0 / std::sqrt(ss / D + eps);
    for (int i = 0; i < D; ++i) ref[m * D + i] = x[m * D + i] * inv * w[i];
  }
  return ref;
}

TEST(RmsNorm, ARowIsBitIdenticalAloneInABatchOf37WithOneOrTwoThreads) {
  std::mt19937 rng(13);
  for (int D : {7, 288, 4100}) {
    const int M = 37;
    auto x = random_floats(static_cast<std::size_t>(M) * D, rng, 2.0f);
    auto w = random_floats(D, rng);
    std::vector<std::vector<float>> outs;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      outs.push_back(poisoned(x.size()));
      rmsnorm(x.data(), w.data(), M, D, 1e-6f, outs.back().data());
      for (int probe : {0, 19, 36}) {
        auto alone = poisoned(D);
        rmsnorm(x.data() + probe * D, w.data(), 1, D, 1e-6f, alone.data());
        EXPECT_EQ(0, std::memcmp(alone.data(), outs.back().data() + probe * D, D * sizeof(float))) << D;
      }
    }
    set_num_threads(0);
    EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[1].data(), x.size() * sizeof(float))) << D;
    EXPECT_LE(relative_error(outs[0], rmsnorm_reference(x, w, M, D, 1e-6)), 1e-6) << D;
  }
}

TEST(RmsNormResidual, AddsThenNormalizesBitIdenticalToTheTwoSteps) {
  std::mt19937 rng(14);
  for (int D : {1, 9, 64, 1000}) {
    const int M = 17;
    auto x = random_floats(static_cast<std::size_t>(M) * D, rng);
    auto residual = random_floats(x.size(), rng, 3.0f);
    auto w = random_floats(D, rng);
    std::vector<float> sum_f(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) sum_f[i] = residual[i] + x[i];
    auto fused_residual = residual;
    auto y = poisoned(x.size());
    rmsnorm_residual(x.data(), fused_residual.data(), w.data(), M, D, 1e-5f, y.data());
    EXPECT_EQ(fused_residual, sum_f);  // fp32 add: exact
    EXPECT_LE(relative_error(y, rmsnorm_reference(sum_f, w, M, D, 1e-5)), 1e-6) << D;
    // Two-step form, and in place (y aliasing x).
    auto two_step_residual = residual;
    add_inplace(two_step_residual.data(), x.data(), static_cast<std::int64_t>(x.size()));
    auto two_step = poisoned(x.size());
    rmsnorm(two_step_residual.data(), w.data(), M, D, 1e-5f, two_step.data());
    EXPECT_EQ(0, std::memcmp(two_step.data(), y.data(), y.size() * sizeof(float)));
    auto in_place = x;
    auto in_place_residual = residual;
    rmsnorm_residual(in_place.data(), in_place_residual.data(), w.data(), M, D, 1e-5f, in_place.data());
    EXPECT_EQ(0, std::memcmp(in_place.data(), y.data(), y.size() * sizeof(float)));
  }
}

TEST(SiluAndMul, FusedGateUpInputMatchesTheSplitForm) {
  std::mt19937 rng(15);
  for (int H : {1, 5, 300}) {
    for (int T : {1, 3, 17}) {
      auto gate_up = random_floats(static_cast<std::size_t>(T) * 2 * H, rng, 3.0f);
      std::vector<float> gate, up;
      std::vector<double> ref;
      for (int t = 0; t < T; ++t)
        for (int i = 0; i < H; ++i) {
          const float g = gate_up[t * 2 * H + i], u = gate_up[t * 2 * H + H + i];
          gate.push_back(g);
          up.push_back(u);
          ref.push_back(g / (1.0 + std::exp(-double(g))) * u);
        }
      auto fused = poisoned(static_cast<std::size_t>(T) * H);
      silu_and_mul_fused(gate_up.data(), T, H, fused.data());
      EXPECT_LE(relative_error(fused, ref), 1e-6) << "T " << T << " H " << H;
      auto split = poisoned(fused.size());
      silu_and_mul(gate.data(), up.data(), static_cast<std::int64_t>(split.size()), split.data());
      EXPECT_EQ(0, std::memcmp(split.data(), fused.data(), fused.size() * sizeof(float)));
    }
  }
}

TEST(Softmax, RowsAreIndependentOfTheBatchAndThreads) {
  std::mt19937 rng(16);
  const int M = 37, N = 1000;
  auto x = random_floats(static_cast<std::size_t>(M) * N, rng, 5.0f);
  set_num_threads(2);
  auto batched = x;
  softmax(batched.data(), M, N);
  set_num_threads(0);
  std::vector<float> row(x.begin() + 20 * N, x.begin() + 21 * N);
  softmax(row.data(), 1, N);
  EXPECT_EQ(0, std::memcmp(row.data(), batched.data() + 20 * N, N * sizeof(float)));
}

}  // namespace
}  // namespace loom::kernels::cpu
