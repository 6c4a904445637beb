// Verification of drafts leaves the emitted tokens distributed exactly as the target's sampling
// distribution: chi-square tests over many seeded draws, for point-mass drafts and for drafts
// drawn from a drafter's own distribution q, for one position and for a chain of two where the
// second position's distribution depends on the first token.
#include <array>
#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "core/sampling/speculative_verify.h"

namespace loom {
namespace {

using Distribution = std::vector<TokenProbability>;

// Pearson's statistic of `counts` (per token id) against `n` draws from `p`.
double chi_square(const std::map<std::int32_t, int>& counts, const Distribution& p, int n) {
  double chi = 0.0;
  for (const TokenProbability& t : p) {
    const double expected = t.p * n;
    const auto it = counts.find(t.id);
    const double observed = it == counts.end() ? 0.0 : it->second;
    chi += (observed - expected) * (observed - expected) / expected;
  }
  return chi;
}

// A plain draw from p by inverse CDF: what sampling without drafts does.
std::int32_t draw(const Distribution& p, SequenceRng& rng) {
  const double u = rng.next_uniform();
  double mass = 0.0;
  for (const TokenProbability& t : p)
    if ((mass += t.p) > u) return t.id;
  return p.back().id;
}

const Distribution kFirst = {{4, 0.40}, {1, 0.25}, {0, 0.15}, {3, 0.12}, {2, 0.08}};

TEST(SpeculativeVerify, TheTokenAtADraftsPositionFollowsTheTargetWhateverTheDraft) {
  constexpr int kDraws = 200000;
  // 99th.9 percentile of chi-square with 4 degrees of freedom: a correct rule fails 1 seed in 1000.
  constexpr double kCritical = 18.47;
  for (std::int32_t draft : {4, 1, 2, 7 /* a token the target never samples */}) {
    SequenceRng rng(1000 + draft);
    std::map<std::int32_t, int> counts;
    int accepted = 0;
    for (int i = 0; i < kDraws; ++i) {
      const DraftVerdict v = verify_point_draft(kFirst, draft, next_verify_draws(rng));
      ++counts[v.token];
      accepted += v.accepted;
      if (!v.accepted) {
        ASSERT_NE(v.token, draft) << "a rejected draft is never its own replacement";
      }
    }
    EXPECT_LT(chi_square(counts, kFirst, kDraws), kCritical) << "draft " << draft;
    double p_draft = 0;
    for (const auto& t : kFirst)
      if (t.id == draft) p_draft = t.p;
    EXPECT_NEAR(double(accepted) / kDraws, p_draft, 0.005) << "acceptance is p(draft)";
  }
}

// Two drafted positions, as the engine verifies them: the second is checked against the target's
// distribution given the first draft, and only when the first was accepted; after a rejection
// the next token is sampled afresh given the replacement. Pairs must follow p1(a) p2(b | a).
TEST(SpeculativeVerify, AChainOfTwoDraftsEmitsPairsWithTheTargetsJointDistribution) {
  auto second = [](std::int32_t first) {  // p2(. | first): shifts with the first token
    Distribution p;
    const std::array<double, 5> base = {0.35, 0.25, 0.2, 0.15, 0.05};
    for (std::int32_t id = 0; id < 5; ++id) p.push_back({(id + first) % 5, base[id]});
    return p;
  };
  constexpr int kDraws = 400000;
  constexpr double kCritical = 51.18;  // chi-square, 24 degrees of freedom, 99.9%
  const std::array<std::int32_t, 2> drafts = {1, 3};
  SequenceRng rng(77);
  std::map<std::int32_t, int> counts;  // pair (a, b) as a * 5 + b
  for (int i = 0; i < kDraws; ++i) {
    const DraftVerdict first = verify_point_draft(kFirst, drafts[0], next_verify_draws(rng));
    std::int32_t b;
    if (first.accepted)
      b = verify_point_draft(second(first.token), drafts[1], next_verify_draws(rng)).token;
    else
      b = draw(second(first.token), rng);
    ++counts[first.token * 5 + b];
  }
  Distribution joint;
  for (const auto& a : kFirst)
    for (const auto& b : second(a.id)) joint.push_back({a.id * 5 + b.id, a.p * b.p});
  EXPECT_LT(chi_square(counts, joint, kDraws), kCritical);
}

// Drafts drawn from q (a drafter's probabilities over a vocabulary of 8): the emitted token follows
// p whatever q is — near p, far from it, with mass where p has none — and a draft is accepted
// with probability sum_x min(p(x), q(x)). Verifying the same drafts as point masses is exact too
// but accepts less (sum_x q(x) p(x)).
TEST(SpeculativeVerify, ADraftDrawnFromQFollowsTheTargetAndIsAcceptedWithTheOverlapOfPAndQ) {
  constexpr int kDraws = 200000;
  constexpr double kCritical = 18.47;  // chi-square, 4 degrees of freedom, 99.9%
  const std::vector<std::vector<float>> qs = {
      {0.15f, 0.25f, 0.08f, 0.12f, 0.40f, 0.0f, 0.0f, 0.0f},     // q = p
      {0.10f, 0.30f, 0.05f, 0.15f, 0.35f, 0.05f, 0.0f, 0.0f},    // near p, a little mass outside it
      {0.05f, 0.05f, 0.50f, 0.05f, 0.05f, 0.10f, 0.10f, 0.10f},  // far from p
  };
  for (std::size_t c = 0; c < qs.size(); ++c) {
    const std::vector<float>& q = qs[c];
    SequenceRng rng(300 + c), drafter(900 + c);
    std::map<std::int32_t, int> counts;
    int accepted = 0, accepted_as_point = 0;
    SequenceRng point_rng(600 + c);
    for (int i = 0; i < kDraws; ++i) {
      // The draft: a draw from q by inverse CDF.
      const double u = drafter.next_uniform();
      std::int32_t x = 0;
      for (double mass = 0; x < 7 && (mass += q[x]) <= u;) ++x;
      const DraftVerdict v = verify_draft(kFirst, x, q, next_verify_draws(rng));
      ++counts[v.token];
      accepted += v.accepted;
      accepted_as_point += verify_point_draft(kFirst, x, next_verify_draws(point_rng)).accepted;
    }
    EXPECT_LT(chi_square(counts, kFirst, kDraws), kCritical) << "q " << c;
    double overlap = 0, point = 0;
    for (const auto& t : kFirst) {
      overlap += std::min<double>(t.p, q[t.id]);
      point += t.p * q[t.id];
    }
    EXPECT_NEAR(double(accepted) / kDraws, overlap, 0.005) << "q " << c;
    EXPECT_NEAR(double(accepted_as_point) / kDraws, point, 0.005) << "q " << c;
  }
}

TEST(SpeculativeVerify, AQThatGivesTheDraftNoProbabilityVerifiesItAsAPointMass) {
  SequenceRng a(11), b(11);
  const std::vector<float> q = {1.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (int i = 0; i < 1000; ++i) {
    const DraftVerdict with_q = verify_draft(kFirst, 3, q, next_verify_draws(a)),
                       point = verify_point_draft(kFirst, 3, next_verify_draws(b));
    EXPECT_EQ(with_q.accepted, point.accepted);
    EXPECT_EQ(with_q.token, point.token);
  }
}

TEST(SpeculativeVerify, ACertainDraftIsAlwaysAcceptedAndAnEmptyDistributionFallsBackToTokenZero) {
  SequenceRng rng(5);
  for (int i = 0; i < 1000; ++i)
    EXPECT_TRUE(verify_point_draft(Distribution{{9, 1.0}}, 9, next_verify_draws(rng)).accepted);
  const DraftVerdict none = verify_point_draft(Distribution{}, 9, next_verify_draws(rng));
  EXPECT_FALSE(none.accepted);
  EXPECT_EQ(none.token, 0);
}

}  // namespace
}  // namespace loom
