#include "core/sampling/candidate_selection.h"

#include <algorithm>
#include <array>

namespace loom {
namespace {

// Below this many candidates a sort and a linear scan beat further partitioning.
constexpr std::size_t kSortThreshold = 64;

// Above this many candidates a histogram pass narrows the search first.
constexpr std::size_t kBucketThreshold = 4096;
constexpr std::size_t kBuckets = 256;

bool reaches(double mass, double target, bool inclusive) {
  return inclusive ? mass >= target : mass > target;
}

// Weighted quickselect: halve the range with nth_element, keep the half where the mass crosses.
std::size_t quickselect_by_mass(std::span<Candidate> candidates, double target, bool inclusive) {
  // Invariant: everything in [0, lo) ranks before [lo, hi), which ranks before [hi, size);
  // `target` is what remains after the mass of [0, lo).
  std::size_t lo = 0;
  std::size_t hi = candidates.size();
  while (hi - lo > kSortThreshold) {
    const std::size_t mid = lo + (hi - lo) / 2;
    std::nth_element(candidates.begin() + static_cast<std::ptrdiff_t>(lo),
                     candidates.begin() + static_cast<std::ptrdiff_t>(mid),
                     candidates.begin() + static_cast<std::ptrdiff_t>(hi), ranks_before);
    double mass = 0.0;
    for (std::size_t i = lo; i < mid; ++i) mass += candidates[i].weight;
    if (reaches(mass, target, inclusive)) {
      hi = mid;
    } else {
      target -= mass;
      lo = mid;
    }
  }
  std::sort(candidates.begin() + static_cast<std::ptrdiff_t>(lo),
            candidates.begin() + static_cast<std::ptrdiff_t>(hi), ranks_before);
  double mass = 0.0;
  for (std::size_t i = lo; i < hi; ++i) {
    mass += candidates[i].weight;
    if (reaches(mass, target, inclusive)) return i;
  }
  return hi - 1;
}

}  // namespace

// One pass puts each candidate into a bucket of equal logit width (bucket 0 holds the best), and
// sums each bucket's mass; ranking is monotone in the bucket index, so the crossing bucket is
// found from the histogram and only its members are searched. Real logit distributions put few
// tokens in the heavy buckets, so this costs two cheap linear passes instead of nth_element's.
std::size_t select_by_mass(std::span<Candidate> candidates, double target, bool inclusive) {
  if (candidates.size() <= kBucketThreshold) {
    return quickselect_by_mass(candidates, target, inclusive);
  }
  double max_logit = candidates[0].logit;
  double min_logit = candidates[0].logit;
  for (const Candidate& c : candidates) {
    max_logit = std::max(max_logit, static_cast<double>(c.logit));
    min_logit = std::min(min_logit, static_cast<double>(c.logit));
  }
  if (max_logit == min_logit) return quickselect_by_mass(candidates, target, inclusive);
  const double scale = static_cast<double>(kBuckets) / (max_logit - min_logit);
  const auto bucket_of = [&](const Candidate& c) {
    const auto b = static_cast<std::size_t>((max_logit - c.logit) * scale);
    return std::min(b, kBuckets - 1);
  };

  const double original_target = target;
  std::array<double, kBuckets> mass{};
  for (const Candidate& c : candidates) mass[bucket_of(c)] += c.weight;
  std::size_t crossing = kBuckets - 1;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    if (reaches(mass[b], target, inclusive)) {
      crossing = b;
      break;
    }
    target -= mass[b];
  }

  const auto first = std::partition(candidates.begin(), candidates.end(),
                                    [&](const Candidate& c) { return bucket_of(c) < crossing; });
  const auto last = std::partition(first, candidates.end(),
                                   [&](const Candidate& c) { return bucket_of(c) == crossing; });
  if (first == last) {
    // Unreachable in exact arithmetic (a bucket is only crossed if it holds mass, and the first
    // and last buckets are never empty); kept so that a surprise costs time, not correctness.
    return quickselect_by_mass(candidates, original_target, inclusive);
  }
  const auto offset = static_cast<std::size_t>(first - candidates.begin());
  const auto count = static_cast<std::size_t>(last - first);
  return offset + quickselect_by_mass(candidates.subspan(offset, count), target, inclusive);
}

}  // namespace loom
