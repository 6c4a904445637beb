#include "loom/kernels/cpu/rope.h"

#include "kernel_test_util.h"

namespace loom::kernels::cpu {
namespace {

using loom::testing::random_floats;
using loom::testing::relative_error;

std::vector<double> reference_inv_freq(int d, double theta, const RopeScaling& s) {
  std::vector<double> inv(d / 2);
  for (int i = 0; i < d / 2; ++i) {
    double f = 1.0 / std::pow(theta, double(2 * i) / d);
    if (s.type == RopeScaling::Type::linear) f /= s.factor;
    if (s.type == RopeScaling::Type::llama3) {
      double wavelen = 2 * M_PI / f, low = s.original_max_position / s.low_freq_factor,
             high = s.original_max_position / s.high_freq_factor;
      if (wavelen > low) f /= s.factor;
      else if (wavelen >= high) {
        double smooth = (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv[i] = f;
  }
  return inv;
}

TEST(Rope, BothPairingsAndEveryScalingMatchFloat64UpToLargePositions) {
  std::mt19937 rng(8);
  const RopeScaling scalings[] = {{}, {RopeScaling::Type::linear, 4.0}, {RopeScaling::Type::llama3, 8.0, 1.0, 4.0, 8192}};
  for (const auto& scaling : scalings) {
    for (auto pairing : {RopePairing::interleaved, RopePairing::rotate_half}) {
      for (int d : {8, 64, 128}) {
        const int T = 5, H = 3;
        std::vector<std::int32_t> positions = {0, 1, 17, 4095, 100000};
        auto inv = rope_inverse_frequencies(d, 500000.0, scaling);
        auto ref_inv = reference_inv_freq(d, 500000.0, scaling);
        for (int i = 0; i < d / 2; ++i) ASSERT_NEAR(inv[i], ref_inv[i], 1e-12 * ref_inv[i]);
        std::vector<float> cos(T * d / 2), sin(T * d / 2);
        rope_cos_sin(inv, positions.data(), T, cos.data(), sin.data());
        auto x = random_floats(static_cast<std::size_t>(T) * H * d, rng);
        std::vector<double> ref(x.size());
        for (int t = 0; t < T; ++t)
          for (int h = 0; h < H; ++h)
            for (int i = 0; i < d / 2; ++i) {
              int a = pairing == RopePairing::interleaved ? 2 * i : i;
              int b = pairing == RopePairing::interleaved ? 2 * i + 1 : i + d / 2;
              double angle = double(positions[t]) * ref_inv[i];
              const float* v = &x[(t * H + h) * d];
              ref[(t * H + h) * d + a] = v[a] * std::cos(angle) - v[b] * std::sin(angle);
              ref[(t * H + h) * d + b] = v[b] * std::cos(angle) + v[a] * std::sin(angle);
            }
        apply_rope(x.data(), T, H, d, cos.data(), sin.data(), pairing);
        EXPECT_LE(relative_error(x, ref), 1e-6) << "d " << d;
      }
    }
  }
}

TEST(Rope, Llama31ScalingKeepsHighFrequenciesAndStretchesLowOnes) {
  // Llama 3.1: theta 500000, factor 8, low 1, high 4, original context 8192, head_dim 128.
  const RopeScaling llama31{RopeScaling::Type::llama3, 8.0, 1.0, 4.0, 8192};
  auto inv = rope_inverse_frequencies(128, 500000.0, llama31);
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_EQ(inv[0], 1.0);                                                // wavelength 2*pi: kept
  EXPECT_NEAR(inv[63], std::pow(500000.0, -126.0 / 128) / 8, 1e-18);    // longest: divided by 8
  auto plain = rope_inverse_frequencies(128, 500000.0, {});
  for (int i = 0; i < 64; ++i) {
    // Between the two: never above the original frequency, never below original / factor.
    EXPECT_LE(inv[i], plain[i] * (1 + 1e-15));
    EXPECT_GE(inv[i], plain[i] / 8 * (1 - 1e-15));
  }
  auto linear = rope_inverse_frequencies(16, 10000.0, {RopeScaling::Type::linear, 4.0});
  auto base = rope_inverse_frequencies(16, 10000.0, {});
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(linear[i], base[i] / 4);
}

// Qwen2.5's long-context setting: head_dim 128, theta 1e6, factor 4 over 32768 positions. The
// reference follows transformers' _compute_yarn_parameters step by step: correction dimensions
// for beta_fast / beta_slow, floored / ceiled, a linear ramp between them.
TEST(Rope, YarnBlendsKeptAndStretchedFrequenciesAlongTransformersRamp) {
  RopeScaling yarn;
  yarn.type = RopeScaling::Type::yarn;
  yarn.factor = 4.0;
  yarn.original_max_position = 32768;
  for (bool truncate : {true, false}) {
    yarn.truncate = truncate;
    const int d = 128;
    const double theta = 1e6;
    const auto inv = rope_inverse_frequencies(d, theta, yarn);
    auto correction_dim = [&](double rotations) {
      return (d * std::log(32768.0 / (rotations * 2 * M_PI))) / (2 * std::log(theta));
    };
    double low = correction_dim(32), high = correction_dim(1);
    if (truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0), high = std::min(high, d - 1.0);
    for (int i = 0; i < d / 2; ++i) {
      const double pos_freq = std::pow(theta, 2.0 * i / d);
      const double ramp = std::min(1.0, std::max(0.0, (i - low) / (high - low)));
      const double extrapolation = 1 - ramp;
      const double expected = 1 / (4.0 * pos_freq) * (1 - extrapolation) + 1 / pos_freq * extrapolation;
      ASSERT_NEAR(inv[i], expected, 1e-14 * expected) << "i " << i << (truncate ? "" : ", not truncated");
    }
    EXPECT_EQ(inv[0], 1.0);                                        // fastest: kept
    EXPECT_NEAR(inv[63], std::pow(theta, -126.0 / 128) / 4, 1e-20);  // slowest: stretched
  }
}

TEST(Rope, CosSinScaleMultipliesBothTables) {
  const std::vector<double> inv = {1.0, 0.01};
  const std::vector<std::int32_t> positions = {3, 1000};
  std::vector<float> cos(4, -7.0f), sin(4, -7.0f);
  rope_cos_sin(inv, positions.data(), 2, cos.data(), sin.data(), 1.25);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < 2; ++i) {
      EXPECT_FLOAT_EQ(cos[t * 2 + i], static_cast<float>(1.25 * std::cos(positions[t] * inv[i])));
      EXPECT_FLOAT_EQ(sin[t * 2 + i], static_cast<float>(1.25 * std::sin(positions[t] * inv[i])));
    }
}

}  // namespace
}  // namespace loom::kernels::cpu
