// Choosing among candidate tokens by cumulative probability mass without sorting them all.
//
// The sampler ranks tokens by descending logit, ties by lower id, and both top-p (the smallest
// top set holding a given mass) and the final draw (inverse CDF) ask the same question: where in
// that ranking does the running mass cross a target? (So does top-k, with every weight 1.)
// select_by_mass answers it in expected O(n) without sorting the vocabulary: a histogram of mass
// over logit buckets finds the bucket where the mass crosses, then a weighted quickselect
// (nth_element halving) searches that bucket, and only a few dozen candidates are ever sorted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace loom {

struct Candidate {
  float logit;          // after penalties; decides the ranking
  std::int32_t id;      // token id; breaks ties in the ranking
  double weight = 0.0;  // unnormalised probability, exp((logit - max) / temperature)
};

// The sampler's deterministic order: descending logit, then ascending id.
inline bool ranks_before(const Candidate& a, const Candidate& b) noexcept {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Precondition: candidates is non-empty and every weight is >= 0.
// Let c(i) be the total weight of the i+1 best-ranked candidates. Returns the smallest i with
// c(i) > target (inclusive == false: an inverse-CDF draw) or c(i) >= target (inclusive == true:
// a top-p cut); returns the last index when rounding leaves no such i.
// Postcondition: candidates[0..i] are exactly the i+1 best-ranked, in ranking order from the
// first index at which the search finished sorting (the prefix before it is only partitioned).
// The result is a pure function of the input sequence, so draws are reproducible.
std::size_t select_by_mass(std::span<Candidate> candidates, double target, bool inclusive);

}  // namespace loom
