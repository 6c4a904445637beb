// Sampling on the GPU against the CPU sampler (sample_with_uniform) on the same logits and the
// same draws, and draft verification against verify_draft_row: every token must be identical. Rows cover ties, NaN, +-inf, rows with nothing
// sampleable, tiny and large vocabularies, and every combination of temperature, top-k, min-p and
// top-p; the draws are a sequence's real stream. Outputs are poisoned; rows not asked for must not
// be written.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/sampling/sampler.h"
#include "core/sampling/sequence_rng.h"
#include "core/sampling/speculative_verify.h"
#include "loom/kernels/cuda/sampling.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

namespace kc = kernels::cuda;

// A row of logits with the hazards the sampler must handle, chosen by `kind`.
std::vector<float> make_row(int vocab, int kind, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> row(vocab);
  for (float& x : row) x = normal(rng);
  const float inf = std::numeric_limits<float>::infinity();
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  switch (kind) {
    case 0: break;  // plain
    case 1:         // coarse values: many exact ties, including between -0 and 0
      for (float& x : row) x = std::round(x);
      for (int i = 0; i < vocab; i += 7) row[i] = -0.0f;
      break;
    case 2:  // NaN, -inf and one +inf
      for (int i = 0; i < vocab / 10 + 1; ++i) row[pick(rng)] = std::numeric_limits<float>::quiet_NaN();
      for (int i = 0; i < vocab / 10 + 1; ++i) row[pick(rng)] = -inf;
      row[pick(rng)] = inf;
      break;
    case 3:  // nothing sampleable
      for (int i = 0; i < vocab; ++i) row[i] = i % 2 ? -inf : std::numeric_limits<float>::quiet_NaN();
      break;
    case 4:  // one dominant token, the rest far below (weights underflow)
      row[pick(rng)] = 900.0f;
      break;
    default:  // a flat distribution: every token nearly equal
      for (float& x : row) x = 1.0f + x * 1e-6f;
      break;
  }
  return row;
}

struct Case {
  SamplingParams params;
  std::vector<float> logits;
  double uniform;
};

TEST(CudaSampling, MatchesTheCpuSamplerTokenForToken) {
  LOOM_REQUIRE_GPU();
  std::mt19937 rng(77);
  SequenceRng draws(2024);
  int compared = 0, differing_from_greedy = 0;
  for (int vocab : {1, 7, 1000, 32000, 50257}) {
    std::vector<Case> cases;
    for (int kind = 0; kind < 6; ++kind) {
      for (double temperature : {0.05, 0.7, 1.0, 2.5}) {
        for (int top_k : {0, 1, 5, 200}) {
          for (double top_p : {1.0, 0.9, 0.3}) {
            for (double min_p : {0.0, 0.05}) {
              if (vocab > 1000 && (top_k == 5 || min_p > 0.0) && kind != 1) continue;  // keep the big rows few
              Case c;
              c.params.temperature = temperature;
              c.params.top_k = top_k;
              c.params.top_p = top_p;
              c.params.min_p = min_p;
              c.logits = make_row(vocab, kind, rng);
              c.uniform = draws.next_uniform();
              cases.push_back(std::move(c));
            }
          }
        }
      }
    }
    // The rows are spread over a logits buffer with spare rows that no SampleRow points at.
    const int num_rows = static_cast<int>(cases.size()) + 3;
    std::vector<float> all(static_cast<std::size_t>(num_rows) * vocab, 0.5f);
    std::vector<kc::SampleRow> rows;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const int at = num_rows - 1 - static_cast<int>(i);  // out of order; rows 0-2 unused
      std::copy(cases[i].logits.begin(), cases[i].logits.end(), all.begin() + static_cast<std::ptrdiff_t>(at) * vocab);
      const SamplingParams& p = cases[i].params;
      rows.push_back({at, p.top_k, p.temperature, p.top_p, p.min_p, cases[i].uniform});
    }
    for (std::size_t i = 0; i < cases.size(); ++i) {  // what the row index put where
      const int at = rows[i].row;
      cases[i].logits.assign(all.begin() + static_cast<std::ptrdiff_t>(at) * vocab,
                             all.begin() + static_cast<std::ptrdiff_t>(at + 1) * vocab);
    }
    DeviceArray<float> d_logits(all);
    DeviceArray<kc::SampleRow> d_rows(rows);
    DeviceArray<std::int32_t> d_out(rows.size() + 1);  // poisoned; the extra slot must stay so
    LOOM_CUDA_CHECK(kc::sample_rows(d_logits.data(), vocab, d_rows.data(), static_cast<int>(rows.size()),
                                    d_out.data(), nullptr));
    const std::vector<std::int32_t> got = d_out.read();
    EXPECT_EQ(got.back(), -1) << "wrote past the rows asked for";
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      const std::int32_t want = sample_with_uniform(c.logits, c.params, c.uniform);
      ASSERT_EQ(got[i], want) << "vocab " << vocab << " row " << i << " T=" << c.params.temperature
                              << " top_k=" << c.params.top_k << " top_p=" << c.params.top_p
                              << " min_p=" << c.params.min_p << " u=" << c.uniform;
      differing_from_greedy += want != greedy_token(c.logits);
      ++compared;
    }
  }
  std::printf("%d rows sampled on the GPU, all identical to the CPU sampler (%d differ from greedy)\n", compared,
              differing_from_greedy);
  EXPECT_GT(differing_from_greedy, compared / 8);  // the cases really sample (many are near-greedy by design)
}

TEST(CudaSampling, FollowsTheDrawAcrossTheWholeDistribution) {
  // One row, many draws: u sweeping [0, 1) must visit the tokens in ranking order, each for a
  // stretch of u proportional to its probability (checked against the CPU at every u).
  LOOM_REQUIRE_GPU();
  const int vocab = 64;
  std::vector<float> logits(vocab);
  for (int i = 0; i < vocab; ++i) logits[i] = static_cast<float>((i * 37) % vocab) / 16.0f;
  SamplingParams params;
  params.temperature = 1.0;
  params.top_p = 0.95;
  std::vector<kc::SampleRow> rows;
  const int draws = 4096;
  for (int i = 0; i < draws; ++i) rows.push_back({0, 0, params.temperature, params.top_p, 0.0, (i + 0.5) / draws});
  DeviceArray<float> d_logits(logits);
  DeviceArray<kc::SampleRow> d_rows(rows);
  DeviceArray<std::int32_t> d_out(rows.size());
  LOOM_CUDA_CHECK(kc::sample_rows(d_logits.data(), vocab, d_rows.data(), draws, d_out.data(), nullptr));
  const auto got = d_out.read();
  for (int i = 0; i < draws; ++i)
    ASSERT_EQ(got[i], sample_with_uniform(logits, params, rows[i].uniform)) << "u=" << rows[i].uniform;
}

// The drafter's probabilities for one row: a softmax of its own logits at `temperature` (a
// draft model's q), concentrated on the draft, spread evenly, or invalid at the draft (zero,
// negative, NaN or above 1: verified as a point mass).
std::vector<float> make_q(int vocab, int kind, std::int32_t draft, std::mt19937& rng) {
  std::vector<float> q(vocab, 0.0f);
  std::normal_distribution<double> normal(0.0, 2.0);
  switch (kind % 5) {
    case 0: {
      std::vector<double> w(vocab);
      double total = 0;
      for (double& x : w) total += x = std::exp(normal(rng));
      for (int i = 0; i < vocab; ++i) q[i] = static_cast<float>(w[i] / total);
      break;
    }
    case 1:
      for (int i = 0; i < vocab; ++i) q[i] = 0.1f / static_cast<float>(vocab);
      q[draft] = 0.9f;
      break;
    case 2:
      for (float& x : q) x = 1.0f / static_cast<float>(vocab);
      break;
    case 3: q[draft] = 0.0f; break;
    default: q[draft] = kind % 2 ? std::numeric_limits<float>::quiet_NaN() : 1.5f; break;
  }
  return q;
}

TEST(CudaSampling, VerifiesDraftsAsTheCpuDoesTokenForToken) {
  LOOM_REQUIRE_GPU();
  std::mt19937 rng(91);
  SequenceRng draws(77);
  int compared = 0, accepted = 0, replaced = 0;
  for (int vocab : {1, 7, 1000, 32000}) {
    struct VerifyCase {
      SamplingParams params;
      std::vector<float> logits, q;
      kc::VerifyRow row;
    };
    std::vector<VerifyCase> cases;
    for (int kind = 0; kind < 6; ++kind) {
      for (int q_kind = 0; q_kind < 6; ++q_kind) {
        for (double temperature : {0.3, 1.0}) {
          for (int top_k : {0, 5}) {
            for (double top_p : {1.0, 0.8}) {
              if (vocab > 1000 && (top_k == 5 || q_kind > 2)) continue;  // keep the big rows few
              VerifyCase c;
              c.params.temperature = temperature;
              c.params.top_k = top_k;
              c.params.top_p = top_p;
              c.params.min_p = kind == 1 ? 0.05 : 0.0;
              c.logits = make_row(vocab, kind, rng);
              // Drafts the target likes (its greedy token) and tokens at random.
              const std::int32_t draft = (compared + static_cast<int>(cases.size())) % 3 == 0
                                             ? greedy_token(c.logits)
                                             : static_cast<std::int32_t>(rng() % static_cast<unsigned>(vocab));
              c.q = make_q(vocab, q_kind, draft, rng);
              const VerifyDraws u = next_verify_draws(draws);
              c.row = {0, top_k, temperature, top_p, c.params.min_p, draft, u.accept, u.residual};
              cases.push_back(std::move(c));
            }
          }
        }
      }
    }
    // Rows out of order in a logits buffer with an unused row; q rows in the rows' order.
    const int num_rows = static_cast<int>(cases.size()) + 1;
    std::vector<float> all(static_cast<std::size_t>(num_rows) * vocab, 0.5f), q_rows;
    std::vector<kc::VerifyRow> rows;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      cases[i].row.row = num_rows - 1 - static_cast<int>(i);
      std::copy(cases[i].logits.begin(), cases[i].logits.end(),
                all.begin() + static_cast<std::ptrdiff_t>(cases[i].row.row) * vocab);
      q_rows.insert(q_rows.end(), cases[i].q.begin(), cases[i].q.end());
      rows.push_back(cases[i].row);
    }
    DeviceArray<float> d_logits(all), d_q(q_rows);
    DeviceArray<kc::VerifyRow> d_rows(rows);
    DeviceArray<std::int32_t> d_out(rows.size() + 1);  // poisoned; the extra slot must stay so
    LOOM_CUDA_CHECK(kc::verify_rows(d_logits.data(), vocab, d_rows.data(), d_q.data(), static_cast<int>(rows.size()),
                                    d_out.data(), nullptr));
    const std::vector<std::int32_t> got = d_out.read();
    EXPECT_EQ(got.back(), -1) << "wrote past the rows asked for";
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const VerifyCase& c = cases[i];
      const DraftVerdict want =
          verify_draft_row(c.logits, c.params, c.row.draft, c.q, VerifyDraws{c.row.u_accept, c.row.u_residual});
      ASSERT_EQ(got[i], want.token) << "vocab " << vocab << " case " << i << " draft " << c.row.draft
                                    << " accepted on the CPU " << want.accepted;
      accepted += want.accepted;
      replaced += !want.accepted && vocab > 1;
      ++compared;
    }
  }
  std::printf("%d drafts verified on the GPU as on the CPU (%d kept, %d replaced)\n", compared, accepted, replaced);
  EXPECT_GT(accepted, compared / 10);
  EXPECT_GT(replaced, compared / 10);
}

}  // namespace
}  // namespace loom::testing
