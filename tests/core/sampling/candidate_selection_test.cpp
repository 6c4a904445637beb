#include "core/sampling/candidate_selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/sampling/sequence_rng.h"

namespace loom {
namespace {

// The reference: sort everything, scan the running mass.
std::int32_t reference_select(std::vector<Candidate> candidates, double target) {
  std::sort(candidates.begin(), candidates.end(), ranks_before);
  double mass = 0.0;
  for (const Candidate& c : candidates) {
    mass += c.weight;
    if (mass > target) return c.id;
  }
  return candidates.back().id;
}

TEST(CandidateSelection, MatchesAFullSortAwayFromRoundingBoundaries) {
  SequenceRng rng(99);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Candidate> candidates;
    const int n = 500 + trial * 250;  // both sides of the histogram threshold
    for (int i = 0; i < n; ++i) {
      // Few distinct logits, so ties (broken by id) are common.
      const float logit = static_cast<float>(static_cast<int>(rng.next_uniform() * 50.0)) / 10.0f;
      candidates.push_back({logit, i, std::exp(static_cast<double>(logit))});
    }
    double total = 0.0;
    for (const Candidate& c : candidates) total += c.weight;
    const double target = rng.next_uniform() * total;
    const std::int32_t expected = reference_select(candidates, target);
    std::vector<Candidate> work = candidates;
    const std::size_t chosen = select_by_mass(work, target, false);
    // Summation order differs from the reference's, which could matter only within ~1e-13 of a
    // boundary; with random targets (and a fixed seed) that does not happen.
    EXPECT_EQ(work[chosen].id, expected) << "trial " << trial;
    // Postcondition: the prefix [0, chosen] is exactly the best chosen + 1.
    std::sort(candidates.begin(), candidates.end(), ranks_before);
    std::vector<std::int32_t> prefix, best;
    for (std::size_t i = 0; i <= chosen; ++i) {
      prefix.push_back(work[i].id);
      best.push_back(candidates[i].id);
    }
    std::sort(prefix.begin(), prefix.end());
    std::sort(best.begin(), best.end());
    EXPECT_EQ(prefix, best) << "trial " << trial;
  }
}

TEST(CandidateSelection, InclusiveStopsWhereMassIsReached) {
  std::vector<Candidate> candidates = {{0.0f, 3, 0.25}, {1.0f, 1, 0.5}, {-1.0f, 2, 0.25}};
  EXPECT_EQ(select_by_mass(candidates, 0.5, true), 0u);   // {1} holds 0.5 >= 0.5
  EXPECT_EQ(select_by_mass(candidates, 0.5, false), 1u);  // needs > 0.5: {1, 3}
  EXPECT_EQ(candidates[1].id, 3);
}

}  // namespace
}  // namespace loom
