// CPU paged attention against a float64 dense causal reference, on shuffled block tables,
// several block sizes and GQA ratios, a mixed prefill/decode batch, with poisoned outputs; and
// bit-exact batch invariance.
#include "loom/kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {
namespace {

struct Case {
  int block_size, num_heads, num_kv_heads, head_dim;
};

// A sequence's full K/V history (dense) and its step (the last q_len tokens).
struct DenseSeq {
  int ctx_len, q_len;
  std::vector<float> k, v;  // [ctx_len, kv_heads, d]
  std::vector<float> q;     // [q_len, heads, d]
};

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& value : x) value = normal(rng);
  return x;
}

// float64 dense causal attention for one sequence.
std::vector<double> reference(const DenseSeq& s, const Case& c, float scale) {
  const int d = c.head_dim, group = c.num_heads / c.num_kv_heads;
  std::vector<double> out(static_cast<std::size_t>(s.q_len) * c.num_heads * d);
  for (int r = 0; r < s.q_len; ++r) {
    const int position = s.ctx_len - s.q_len + r;
    for (int h = 0; h < c.num_heads; ++h) {
      const int kvh = h / group;
      std::vector<double> scores(position + 1);
      double max_score = -1e300;
      for (int j = 0; j <= position; ++j) {
        double dot = 0;
        for (int i = 0; i < d; ++i)
          dot += double(s.q[(r * c.num_heads + h) * d + i]) * s.k[(j * c.num_kv_heads + kvh) * d + i];
        scores[j] = dot * scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0;
      for (double& score : scores) sum += (score = std::exp(score - max_score));
      for (int i = 0; i < d; ++i) {
        double acc = 0;
        for (int j = 0; j <= position; ++j) acc += scores[j] / sum * s.v[(j * c.num_kv_heads + kvh) * d + i];
        out[(r * c.num_heads + h) * d + i] = acc;
      }
    }
  }
  return out;
}

// Lays the sequences into a paged cache with shuffled block ids; the history before each step
// is written directly, the step's own K/V through write_kv (as the engine does).
struct PagedBatch {
  std::vector<float> k_cache, v_cache;
  std::vector<std::vector<std::int32_t>> tables;
  std::vector<AttentionSeq> seqs;
  std::vector<float> q, k_new, v_new;
  PagedKvLayer layer;
};

PagedBatch build(const std::vector<DenseSeq>& dense, const Case& c, std::mt19937& rng) {
  PagedBatch b;
  int total_blocks = 0;
  for (const auto& s : dense) total_blocks += (s.ctx_len + c.block_size - 1) / c.block_size;
  total_blocks += 3;  // unused blocks in between
  std::vector<std::int32_t> ids(total_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  const std::size_t row = static_cast<std::size_t>(c.num_kv_heads) * c.head_dim;
  b.k_cache.assign(total_blocks * c.block_size * row, std::numeric_limits<float>::quiet_NaN());
  b.v_cache = b.k_cache;
  b.layer = {b.k_cache.data(), b.v_cache.data(), c.block_size, c.num_kv_heads, c.head_dim};
  int next = 0, q_start = 0;
  for (const auto& s : dense) {
    std::vector<std::int32_t> table;
    for (int i = 0; i < (s.ctx_len + c.block_size - 1) / c.block_size; ++i) table.push_back(ids[next++]);
    for (int j = 0; j < s.ctx_len - s.q_len; ++j) {
      std::size_t slot = (static_cast<std::size_t>(table[j / c.block_size]) * c.block_size + j % c.block_size) * row;
      std::copy_n(&s.k[j * row], row, &b.k_cache[slot]);
      std::copy_n(&s.v[j * row], row, &b.v_cache[slot]);
    }
    b.tables.push_back(std::move(table));
    b.q.insert(b.q.end(), s.q.begin(), s.q.end());
    b.k_new.insert(b.k_new.end(), s.k.end() - s.q_len * row, s.k.end());
    b.v_new.insert(b.v_new.end(), s.v.end() - s.q_len * row, s.v.end());
    b.seqs.push_back({q_start, s.q_len, s.ctx_len, nullptr});
    q_start += s.q_len;
  }
  for (std::size_t i = 0; i < b.seqs.size(); ++i) b.seqs[i].block_table = b.tables[i].data();
  return b;
}

std::vector<float> run(PagedBatch& b, const Case& c, float scale) {
  write_kv(b.layer, b.seqs, b.k_new.data(), b.v_new.data());
  std::vector<float> out(b.q.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
  paged_attention(b.layer, b.seqs, b.q.data(), c.num_heads, scale, out.data());
  return out;
}

DenseSeq random_seq(int ctx_len, int q_len, const Case& c, std::mt19937& rng) {
  std::size_t row = static_cast<std::size_t>(c.num_kv_heads) * c.head_dim;
  return {ctx_len, q_len, random_vector(ctx_len * row, rng), random_vector(ctx_len * row, rng),
          random_vector(static_cast<std::size_t>(q_len) * c.num_heads * c.head_dim, rng)};
}

class PagedAttention : public ::testing::TestWithParam<Case> {};

TEST_P(PagedAttention, MatchesFloat64ReferenceOnAMixedBatch) {
  const Case c = GetParam();
  std::mt19937 rng(1234 + c.block_size * 7 + c.num_kv_heads);
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  // Decodes, a full prefill, a prefill chunk on top of cached context, ragged lengths.
  std::vector<DenseSeq> dense = {random_seq(1, 1, c, rng), random_seq(37, 1, c, rng), random_seq(23, 23, c, rng),
                                 random_seq(70, 9, c, rng), random_seq(c.block_size, 1, c, rng)};
  PagedBatch batch = build(dense, c, rng);
  std::vector<float> out = run(batch, c, scale);
  // Bound: fp32 accumulation over <= 70 keys of unit-variance data; 1e-5 relative is ~100 ulp.
  std::size_t offset = 0;
  for (const auto& s : dense) {
    std::vector<double> ref = reference(s, c, scale);
    double err = 0, norm = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      ASSERT_FALSE(std::isnan(out[offset + i])) << "output " << offset + i << " never written";
      err += (out[offset + i] - ref[i]) * (out[offset + i] - ref[i]);
      norm += ref[i] * ref[i];
    }
    EXPECT_LE(std::sqrt(err / norm), 1e-5) << "ctx " << s.ctx_len << " q_len " << s.q_len;
    offset += ref.size();
  }
}

TEST_P(PagedAttention, ASequenceGetsBitIdenticalResultsAloneOrInABatch) {
  const Case c = GetParam();
  std::mt19937 rng(99);
  const float scale = 1.0f / std::sqrt(float(c.head_dim));
  DenseSeq probe = random_seq(41, 5, c, rng);
  std::vector<DenseSeq> batch = {random_seq(13, 13, c, rng), probe, random_seq(90, 1, c, rng)};
  PagedBatch alone = build({probe}, c, rng);
  PagedBatch mixed = build(batch, c, rng);
  const std::size_t start = batch[0].q.size();
  std::vector<float> first;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    std::vector<float> a = run(alone, c, scale);
    std::vector<float> m = run(mixed, c, scale);
    ASSERT_EQ(0, std::memcmp(a.data(), m.data() + start, a.size() * sizeof(float))) << threads << " threads";
    if (first.empty()) first = m;
    ASSERT_EQ(0, std::memcmp(first.data(), m.data(), m.size() * sizeof(float))) << threads << " threads";
  }
  set_num_threads(0);
}

TEST_P(PagedAttention, WriteBySlotMappingMatchesWriteBySequence) {
  const Case c = GetParam();
  std::mt19937 rng(5);
  std::vector<DenseSeq> dense = {random_seq(20, 20, c, rng), random_seq(9, 1, c, rng), random_seq(40, 7, c, rng)};
  PagedBatch by_seq = build(dense, c, rng);
  PagedBatch by_slot = by_seq;
  by_slot.layer.k = by_slot.k_cache.data();
  by_slot.layer.v = by_slot.v_cache.data();
  write_kv(by_seq.layer, by_seq.seqs, by_seq.k_new.data(), by_seq.v_new.data());
  std::vector<std::int32_t> slots;
  for (const AttentionSeq& seq : by_slot.seqs)
    for (int r = 0; r < seq.q_len; ++r) {
      const int position = seq.ctx_len - seq.q_len + r;
      slots.push_back(seq.block_table[position / c.block_size] * c.block_size + position % c.block_size);
    }
  write_kv_slots(by_slot.layer, slots.data(), static_cast<int>(slots.size()), by_slot.k_new.data(), by_slot.v_new.data());
  // NaN-poisoned unused slots compare unequal, so compare bytes.
  ASSERT_EQ(0, std::memcmp(by_seq.k_cache.data(), by_slot.k_cache.data(), by_seq.k_cache.size() * sizeof(float)));
  ASSERT_EQ(0, std::memcmp(by_seq.v_cache.data(), by_slot.v_cache.data(), by_seq.v_cache.size() * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttention,
                         ::testing::Values(Case{8, 4, 4, 16}, Case{16, 8, 2, 64}, Case{32, 8, 2, 32},
                                           Case{16, 6, 1, 8}),
                         [](const auto& info) {
                           const Case& c = info.param;
                           return "bs" + std::to_string(c.block_size) + "_h" + std::to_string(c.num_heads) + "_kv" +
                                  std::to_string(c.num_kv_heads) + "_d" + std::to_string(c.head_dim);
                         });

}  // namespace
}  // namespace loom::kernels::cpu
