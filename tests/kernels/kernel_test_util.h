// Shared helpers for kernel tests: random data, NaN-poisoned buffers, relative error vs float64.
#pragma once

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace loom::testing {

inline std::vector<float> random_floats(std::size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

inline std::vector<float> poisoned(std::size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

// ||out - ref|| / ||ref||; a NaN anywhere (an output never written) fails the test.
inline double relative_error(const std::vector<float>& out, const std::vector<double>& ref) {
  EXPECT_EQ(out.size(), ref.size());
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(out[i])) {
      ADD_FAILURE() << "output " << i << " is NaN (never written?)";
      return INFINITY;
    }
    err += (out[i] - ref[i]) * (out[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return norm == 0 ? std::sqrt(err) : std::sqrt(err / norm);
}

}  // namespace loom::testing
