// Log-probabilities on the GPU (row_logprobs) against the CPU's token_logprobs, which computes in
// double: the chosen token's value and the top n, on rows with ties, NaN, +-inf, nothing finite,
// a dominant token, and vocabularies from 1 to 50257; rows out of order among unused ones; the
// results poisoned first.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/sampling/logprobs.h"
#include "loom/kernels/cuda/logprobs.h"
#include "support/gpu_test_util.h"

namespace loom::testing {
namespace {

namespace kc = kernels::cuda;

std::vector<float> hazard_row(int vocab, int kind, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> row(vocab);
  for (float& x : row) x = normal(rng);
  if (kind == 1)  // coarse values: many exact ties
    for (float& x : row) x = std::round(x);
  if (kind == 2) {  // NaN, -inf and one +inf
    for (int i = 0; i < vocab / 10 + 1; ++i) row[pick(rng)] = nan;
    for (int i = 0; i < vocab / 10 + 1; ++i) row[pick(rng)] = -inf;
    row[pick(rng)] = inf;
  }
  if (kind == 3)  // nothing finite
    for (int i = 0; i < vocab; ++i) row[i] = i % 2 ? -inf : nan;
  if (kind == 4) row[pick(rng)] = 900.0f;  // one dominant token, the rest underflow
  if (kind == 5)                           // a few finite values, the rest -inf: the top runs into -inf, ranked by id
    for (int i = 0; i < vocab; ++i) row[i] = i % 97 == 3 ? row[i] : -inf;
  return row;
}

void expect_close(double got, double want, const std::string& where) {
  if (std::isinf(want)) {
    EXPECT_EQ(got, want) << where;
  } else {
    EXPECT_NEAR(got, want, 1e-9 * std::max(1.0, std::abs(want))) << where;
  }
}

TEST(CudaLogprobs, MatchTheCpusFloat64LogSoftmaxAndTopNOnHazardousRows) {
  LOOM_REQUIRE_GPU();
  std::mt19937 rng(5);
  int compared = 0;
  for (int vocab : {1, 7, 1000, 32000, 50257}) {
    std::vector<std::vector<float>> cases;
    std::vector<kc::LogprobRow> rows;
    const int kinds = 6, tops = 4;
    const int num_rows = kinds * tops + 2;
    std::vector<float> all(static_cast<std::size_t>(num_rows) * vocab, 0.25f);
    for (int kind = 0; kind < kinds; ++kind)
      for (int t = 0; t < tops; ++t) {
        const int top_n = std::vector<int>{0, 1, 5, kc::kMaxTopLogprobs}[t];
        const int at = num_rows - 1 - static_cast<int>(rows.size());  // out of order; rows 0-1 unused
        std::vector<float> row = hazard_row(vocab, kind, rng);
        std::copy(row.begin(), row.end(), all.begin() + static_cast<std::ptrdiff_t>(at) * vocab);
        const int token = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
        rows.push_back({at, token, top_n});
        cases.push_back(std::move(row));
      }
    DeviceArray<float> d_logits(all);
    DeviceArray<kc::LogprobRow> d_rows(rows);
    std::vector<kc::LogprobResult> poison(rows.size() + 1);
    for (kc::LogprobResult& p : poison) {
      p.logprob = 12345.0;
      for (int k = 0; k < kc::kMaxTopLogprobs; ++k) p.top_ids[k] = -7;
    }
    DeviceArray<kc::LogprobResult> d_out(poison);
    LOOM_CUDA_CHECK(
        kc::row_logprobs(d_logits.data(), vocab, d_rows.data(), static_cast<int>(rows.size()), d_out.data(), nullptr));
    const std::vector<kc::LogprobResult> got = d_out.read();
    EXPECT_EQ(got.back().logprob, 12345.0) << "wrote past the rows asked for";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const TokenLogprobs want = token_logprobs(cases[i], rows[i].token, rows[i].top_n);
      const std::string where = "vocab " + std::to_string(vocab) + " case " + std::to_string(i);
      expect_close(got[i].logprob, want.logprob, where);
      ASSERT_EQ(want.top.size(), static_cast<std::size_t>(std::min(rows[i].top_n, vocab))) << where;
      for (std::size_t k = 0; k < want.top.size(); ++k) {
        EXPECT_EQ(got[i].top_ids[k], want.top[k].first) << where << " top " << k;
        expect_close(got[i].top_logprobs[k], want.top[k].second, where + " top " + std::to_string(k));
      }
      for (std::size_t k = want.top.size(); k < static_cast<std::size_t>(kc::kMaxTopLogprobs); ++k)
        EXPECT_EQ(got[i].top_ids[k], -7) << where << ": a top entry beyond top_n was written";
      ++compared;
    }
  }
  std::printf("%d rows' log-probabilities on the GPU, all equal to the CPU's float64 ones\n", compared);
}

}  // namespace
}  // namespace loom::testing
