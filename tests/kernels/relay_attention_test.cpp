// CPU relay attention: a prefix shared by some sequences of a batch is read once for all of them.
// Checked against a float64 reference and paged_attention on shuffled block tables, several block
// sizes, GQA ratios, prefix lengths, decodes and prefill chunks after the prefix, with poisoned
// outputs; and bit for bit the same whether a sequence shares its prefix, alone or batched.
#include "loom/kernels/cpu/relay_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "loom/kernels/cpu/paged_attention.h"

namespace loom::kernels::cpu {
namespace {

struct Shape {
  int block_size, num_heads, num_kv_heads, head_dim;
};

// A batch over a cache of random K/V: sequences 0 .. members-1 start with the same prefix blocks,
// the others have block tables of their own; the blocks are shuffled in the cache.
struct Batch {
  Shape shape;
  int num_blocks = 0;
  std::vector<float> k, v, q;
  std::vector<std::int32_t> prefix_table;
  std::vector<std::vector<std::int32_t>> tables;
  std::vector<AttentionSeq> seqs;
  std::vector<int> members;
  int num_tokens = 0;

  PagedKvLayer layer() { return {k.data(), v.data(), shape.block_size, shape.num_kv_heads, shape.head_dim}; }
};

Batch make_batch(const Shape& s, int prefix_blocks, int num_members, const std::vector<std::pair<int, int>>& own,
                 std::mt19937& rng) {
  // own[i] = (tokens after the prefix for members / whole context for others, q_len).
  Batch b;
  b.shape = s;
  std::vector<int> needed;
  int total_blocks = prefix_blocks;
  for (std::size_t i = 0; i < own.size(); ++i) {
    const bool member = static_cast<int>(i) < num_members;
    const int ctx = (member ? prefix_blocks * s.block_size : 0) + own[i].first;
    needed.push_back((ctx + s.block_size - 1) / s.block_size - (member ? prefix_blocks : 0));
    total_blocks += needed.back();
  }
  b.num_blocks = total_blocks + 3;  // spare blocks no table uses
  std::vector<std::int32_t> ids(static_cast<std::size_t>(b.num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::size_t next = 0;
  for (int i = 0; i < prefix_blocks; ++i) b.prefix_table.push_back(ids[next++]);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::size_t kv_floats = static_cast<std::size_t>(b.num_blocks) * s.block_size * s.num_kv_heads * s.head_dim;
  b.k.resize(kv_floats);
  b.v.resize(kv_floats);
  for (float& x : b.k) x = normal(rng);
  for (float& x : b.v) x = normal(rng);
  for (std::size_t i = 0; i < own.size(); ++i) {
    const bool member = static_cast<int>(i) < num_members;
    std::vector<std::int32_t> table = member ? b.prefix_table : std::vector<std::int32_t>{};
    for (int j = 0; j < needed[i]; ++j) table.push_back(ids[next++]);
    b.tables.push_back(table);
    if (member) b.members.push_back(static_cast<int>(i));
  }
  for (std::size_t i = 0; i < own.size(); ++i) {
    const bool member = static_cast<int>(i) < num_members;
    const int ctx = (member ? prefix_blocks * s.block_size : 0) + own[i].first;
    b.seqs.push_back({b.num_tokens, own[i].second, ctx, b.tables[i].data()});
    b.num_tokens += own[i].second;
  }
  b.q.resize(static_cast<std::size_t>(b.num_tokens + 2) * s.num_heads * s.head_dim);  // 2 rows of no sequence
  for (float& x : b.q) x = normal(rng);
  return b;
}

std::vector<float> poisoned(const Batch& b) {
  return std::vector<float>(b.q.size(), std::numeric_limits<float>::quiet_NaN());
}

std::vector<float> relay(Batch& b, bool share) {
  std::vector<float> out = poisoned(b);
  const SharedPrefix prefix{b.prefix_table.data(), static_cast<int>(b.prefix_table.size()),
                            share ? std::span<const int>(b.members) : std::span<const int>{}};
  relay_attention(b.layer(), b.seqs, prefix, b.q.data(), b.shape.num_heads, 0.3f, out.data());
  return out;
}

// float64 attention of row r of sequence s, head h, walking its block table.
std::vector<double> reference(const Batch& b, const AttentionSeq& s, int r, int h) {
  const Shape& c = b.shape;
  const int d = c.head_dim, kvh = h / (c.num_heads / c.num_kv_heads), position = s.ctx_len - s.q_len + r;
  auto at = [&](const std::vector<float>& x, int j, int i) {
    const std::size_t row = static_cast<std::size_t>(s.block_table[j / c.block_size]) * c.block_size + j % c.block_size;
    return double(x[(row * c.num_kv_heads + kvh) * d + i]);
  };
  const float* q = b.q.data() + (static_cast<std::size_t>(s.q_start + r) * c.num_heads + h) * d;
  std::vector<double> scores(position + 1);
  double max_score = -1e300, sum = 0;
  for (int j = 0; j <= position; ++j) {
    double dot = 0;
    for (int i = 0; i < d; ++i) dot += double(q[i]) * at(b.k, j, i);
    max_score = std::max(max_score, scores[j] = dot * 0.3);
  }
  for (double& x : scores) sum += (x = std::exp(x - max_score));
  std::vector<double> out(d, 0.0);
  for (int j = 0; j <= position; ++j)
    for (int i = 0; i < d; ++i) out[i] += scores[j] / sum * at(b.v, j, i);
  return out;
}

const Shape kShapes[] = {{16, 4, 4, 8}, {4, 8, 2, 16}, {8, 6, 1, 20}, {32, 4, 2, 64}};

TEST(RelayAttention, MatchesFloat64AndPagedWithPrefixesOfAnyLengthAndRaggedSequences) {
  std::mt19937 rng(5);
  for (const Shape& s : kShapes)
    for (int prefix_blocks : {1, 3, 7}) {
      // Members: decodes at and past a block edge, a prefill chunk after the prefix; others: a
      // decode and a chunk of their own.
      const std::vector<std::pair<int, int>> own = {{1, 1}, {s.block_size + 3, 1}, {5, 5}, {2 * s.block_size, 3},
                                                    {9, 1}, {s.block_size + 1, 4}};
      Batch b = make_batch(s, prefix_blocks, 4, own, rng);
      const std::vector<float> got = relay(b, true);
      std::vector<float> paged = poisoned(b);
      paged_attention(b.layer(), b.seqs, b.q.data(), s.num_heads, 0.3f, paged.data());
      const int d = s.head_dim;
      for (const AttentionSeq& seq : b.seqs)
        for (int r = 0; r < seq.q_len; ++r)
          for (int h = 0; h < s.num_heads; ++h) {
            const std::vector<double> want = reference(b, seq, r, h);
            const std::size_t at = (static_cast<std::size_t>(seq.q_start + r) * s.num_heads + h) * d;
            double err = 0, err_paged = 0, norm = 0;
            for (int i = 0; i < d; ++i) {
              err = std::max(err, std::abs(got[at + i] - want[i]));
              err_paged += (double(got[at + i]) - paged[at + i]) * (double(got[at + i]) - paged[at + i]);
              norm += want[i] * want[i];
            }
            ASSERT_LT(err, 2e-6) << "block " << s.block_size << " prefix " << prefix_blocks << " row " << at;
            ASSERT_LT(std::sqrt(err_paged / norm), 1e-5) << "against paged_attention";
          }
      for (std::size_t i = static_cast<std::size_t>(b.num_tokens) * s.num_heads * d; i < got.size(); ++i)
        ASSERT_TRUE(std::isnan(got[i])) << "wrote a row of no sequence";
    }
}

TEST(RelayAttention, ASequencesResultIsBitIdenticalSharedOrNotAloneOrBatched) {
  std::mt19937 rng(9);
  for (const Shape& s : kShapes) {
    const std::vector<std::pair<int, int>> own = {{3, 1}, {s.block_size, 2}, {7, 1}, {4, 1}};
    Batch b = make_batch(s, 4, 3, own, rng);
    const std::vector<float> shared = relay(b, true), unshared = relay(b, false);
    const std::size_t rows = static_cast<std::size_t>(b.num_tokens) * s.num_heads * s.head_dim;
    ASSERT_TRUE(std::equal(shared.begin(), shared.begin() + rows, unshared.begin())) << "block " << s.block_size;
    // Member 1 alone, sharing its prefix with nobody else (its own rows moved to the front).
    Batch alone = b;
    AttentionSeq seq = b.seqs[1];
    const std::size_t width = static_cast<std::size_t>(s.num_heads) * s.head_dim;
    std::copy_n(b.q.begin() + seq.q_start * width, seq.q_len * width, alone.q.begin());
    seq.q_start = 0;
    alone.seqs = {seq};
    alone.members = {0};
    alone.num_tokens = seq.q_len;
    const std::vector<float> one = relay(alone, true);
    ASSERT_TRUE(std::equal(one.begin(), one.begin() + seq.q_len * width, shared.begin() + b.seqs[1].q_start * width))
        << "block " << s.block_size;
  }
}

}  // namespace
}  // namespace loom::kernels::cpu
