// The random stream of one sequence.
//
// Counter-based: the k-th draw is a pure function of (seed, k), so a sequence's samples never
// depend on which other sequences share its batch, on the order a batch is processed in, or on
// thread timing; and a preempted sequence resumes its stream exactly by remembering draws().
// The generator is splitmix64 (Steele, Lea, Flood 2014; passes BigCrush): the k-th output is the
// splitmix64 finalizer applied to key + (k + 1) * golden_gamma, with key = finalizer(seed) so
// that nearby seeds (0, 1, 2 ...) start far apart.
#pragma once

#include <cstdint>

namespace loom {

namespace sampling_detail {
// splitmix64's output function: a bijective 64-bit mixer with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
constexpr std::uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ULL;
}  // namespace sampling_detail

class SequenceRng {
 public:
  // A fresh stream; `draws` > 0 resumes one that already produced that many values.
  explicit SequenceRng(std::uint64_t seed, std::uint64_t draws = 0) noexcept
      : seed_(seed), key_(sampling_detail::mix64(seed)), draws_(draws) {}

  // The next raw 64-bit value of the stream.
  std::uint64_t next_u64() noexcept {
    ++draws_;
    return sampling_detail::mix64(key_ + draws_ * sampling_detail::kGoldenGamma);
  }

  // The next value, uniform in [0, 1): the top 53 bits scaled by 2^-53, so 1.0 never occurs.
  double next_uniform() noexcept {
    return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
  }

  std::uint64_t seed() const noexcept { return seed_; }
  // How many values this stream has produced since it began (including before a resume).
  std::uint64_t draws() const noexcept { return draws_; }

 private:
  std::uint64_t seed_;
  std::uint64_t key_;
  std::uint64_t draws_;
};

// The seed of a request that gave none: a mix of the run's seed and a stable index (e.g. the
// request's index times max n, plus the sample's index), independent of batching and arrival time.
constexpr std::uint64_t derive_seed(std::uint64_t run_seed, std::uint64_t index) noexcept {
  return sampling_detail::mix64(sampling_detail::mix64(run_seed) ^
                                (index + 1) * sampling_detail::kGoldenGamma);
}

}  // namespace loom
