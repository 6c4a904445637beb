#include "core/workloads/seeded_random.h"

#include <cmath>

namespace loom::workloads {

namespace {

constexpr double kLn2 = 0.693147180559945309417232121458176568;

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

SeededRandom SeededRandom::stream(std::uint64_t seed, std::uint64_t purpose) {
  return SeededRandom(mix(seed ^ mix(purpose + 0x9e3779b97f4a7c15ULL)));
}

std::uint64_t SeededRandom::next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  return mix(state_);
}

double SeededRandom::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

std::int64_t SeededRandom::between(std::int64_t lo, std::int64_t hi) {
  auto span = static_cast<std::uint64_t>(hi - lo) + 1;
  if (span == 0) return static_cast<std::int64_t>(next());  // the whole 64-bit range
  return lo + static_cast<std::int64_t>(next() % span);
}

double SeededRandom::exponential(double rate) {
  // 1 - u is in (0, 1], so the log is finite.
  return -portable_log(1.0 - uniform()) / rate;
}

double portable_log(double x) {
  // x = m * 2^e with m in [0.5, 1) (frexp is exact); move m to [sqrt(1/2), sqrt(2)) so that
  // z = (m-1)/(m+1) is small, then log(m) = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...).
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  double z = (m - 1.0) / (m + 1.0);
  double z2 = z * z;
  double term = z;
  double sum = 0.0;
  for (int k = 1; k < 40; k += 2) {  // |z| < 0.172: z^41 is below 1e-31
    sum += term / k;
    term *= z2;
  }
  return 2.0 * sum + e * kLn2;
}

double portable_exp(double x) {
  // x = k ln2 + r with |r| <= ln2/2; exp(r) by its Taylor series; ldexp is exact. ln2 is split
  // in two (Cody-Waite, fdlibm's constants) so that k * kLn2Hi is exact and r keeps its precision.
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  double k = std::nearbyint(x / kLn2);
  double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double term = 1.0;
  double sum = 1.0;
  for (int n = 1; n < 25; ++n) {  // 0.35^25 / 25! is far below 1e-17
    term *= r / n;
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(k));
}

ZipfSampler::ZipfSampler(std::size_t n, double exponent) {
  cumulative_.reserve(n);
  double total = 0.0;
  for (std::size_t r = 0; r < n; ++r) {
    total += portable_exp(-exponent * portable_log(static_cast<double>(r + 1)));
    cumulative_.push_back(total);
  }
  for (double& c : cumulative_) c /= total;
  if (!cumulative_.empty()) cumulative_.back() = 1.0;
}

std::size_t ZipfSampler::draw(SeededRandom& random) const {
  double u = random.uniform();
  for (std::size_t r = 0; r < cumulative_.size(); ++r)
    if (u < cumulative_[r]) return r;
  return cumulative_.empty() ? 0 : cumulative_.size() - 1;
}

}  // namespace loom::workloads
