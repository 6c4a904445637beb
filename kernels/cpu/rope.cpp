#include "loom/kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

namespace loom::kernels::cpu {

std::vector<double> rope_inverse_frequencies(int head_dim, double theta, const RopeScaling& scaling) {
  std::vector<double> inv(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) inv[i] = std::pow(theta, -2.0 * i / head_dim);
  if (scaling.type == RopeScaling::Type::linear) {
    for (double& f : inv) f /= scaling.factor;
  } else if (scaling.type == RopeScaling::Type::llama3) {
    const double low_wavelen = scaling.original_max_position / scaling.low_freq_factor;
    const double high_wavelen = scaling.original_max_position / scaling.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen < high_wavelen) continue;  // high frequencies: unchanged
      if (wavelen > low_wavelen) {
        f /= scaling.factor;  // low frequencies: stretched
      } else {
        const double smooth = (scaling.original_max_position / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1.0 - smooth) * f / scaling.factor + smooth * f;
      }
    }
  } else if (scaling.type == RopeScaling::Type::yarn) {
    // The dimension whose frequency turns `rotations` times over the original context.
    const auto dimension_of = [&](double rotations) {
      return head_dim * std::log(scaling.original_max_position / (rotations * 2.0 * M_PI)) / (2.0 * std::log(theta));
    };
    double low = dimension_of(scaling.beta_fast), high = dimension_of(scaling.beta_slow);
    if (scaling.truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0);
    high = std::min(high, head_dim - 1.0);
    if (low == high) high += 0.001;  // no division by zero
    for (int i = 0; i < head_dim / 2; ++i) {
      const double stretched = std::clamp((i - low) / (high - low), 0.0, 1.0);
      inv[i] = inv[i] / scaling.factor * stretched + inv[i] * (1.0 - stretched);
    }
  }
  return inv;
}

void rope_cos_sin(const std::vector<double>& inv_freq, const std::int32_t* positions, int T, float* cos, float* sin,
                  double scale) {
  const std::size_t half = inv_freq.size();
  for (int t = 0; t < T; ++t) {
    for (std::size_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[t]) * inv_freq[i];
      cos[t * half + i] = static_cast<float>(scale * std::cos(angle));
      sin[t * half + i] = static_cast<float>(scale * std::sin(angle));
    }
  }
}

void apply_rope(float* x, int T, int heads, int head_dim, const float* cos, const float* sin, RopePairing pairing) {
  const int half = head_dim / 2;
  for (int t = 0; t < T; ++t) {
    const float* c = cos + static_cast<std::size_t>(t) * half;
    const float* s = sin + static_cast<std::size_t>(t) * half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + (static_cast<std::size_t>(t) * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const int a = pairing == RopePairing::interleaved ? 2 * i : i;
        const int b = pairing == RopePairing::interleaved ? 2 * i + 1 : i + half;
        const float x1 = v[a], x2 = v[b];
        v[a] = x1 * c[i] - x2 * s[i];
        v[b] = x2 * c[i] + x1 * s[i];
      }
    }
  }
}

}  // namespace loom::kernels::cpu
