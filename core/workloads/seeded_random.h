// The randomness behind the workload generators, made to give the same numbers on every
// platform: SplitMix64 for bits, and log/exp built from + - * / only (IEEE-exact everywhere),
// because std::log and std::pow may differ in the last bit between C libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace loom::workloads {

// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state, one add and a mix per draw.
class SeededRandom {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}

  // An independent stream for `purpose`, so that e.g. changing the request count does not change
  // the system prompts.
  static SeededRandom stream(std::uint64_t seed, std::uint64_t purpose);

  std::uint64_t next();
  // Uniform in [0, 1), 53 bits.
  double uniform();
  // Uniform integer in [lo, hi] (lo <= hi); the modulo bias is below 2^-40 for the ranges used here.
  std::int64_t between(std::int64_t lo, std::int64_t hi);
  // Exponentially distributed with the given rate (> 0): Poisson inter-arrival times.
  double exponential(double rate);

 private:
  std::uint64_t state_;
};

// Natural logarithm and exponential of finite arguments (log: x > 0), to ~1e-15 relative.
double portable_log(double x);
double portable_exp(double x);

// Draws ranks 0..n-1 with P(r) proportional to 1 / (r+1)^exponent, by inverse CDF.
class ZipfSampler {
 public:
  ZipfSampler(std::size_t n, double exponent);
  std::size_t draw(SeededRandom& random) const;

 private:
  std::vector<double> cumulative_;  // cumulative_[r] = P(rank <= r); the last is 1
};

}  // namespace loom::workloads
