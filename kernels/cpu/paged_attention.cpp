#include "loom/kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention_math.h"
#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

const float* slot(const float* base, const PagedKvLayer& cache, const std::int32_t* table, int position, int kv_head) {
  std::size_t block = static_cast<std::size_t>(table[position / cache.block_size]);
  std::size_t row = block * cache.block_size + position % cache.block_size;
  return base + (row * cache.num_kv_heads + kv_head) * cache.head_dim;
}

using attention_math::axpy;
using attention_math::dot;

// Calls fn(position, k_row, v_row) for positions 0..last of one KV head, walking the block table
// block by block so that no position needs a division.
template <typename Fn>
void for_each_key(const PagedKvLayer& cache, const std::int32_t* table, int last, int kv_head, Fn&& fn) {
  const std::size_t stride = static_cast<std::size_t>(cache.num_kv_heads) * cache.head_dim;
  for (int start = 0, b = 0; start <= last; start += cache.block_size, ++b) {
    const std::size_t base = (static_cast<std::size_t>(table[b]) * cache.block_size * cache.num_kv_heads + kv_head) *
                             cache.head_dim;
    const float* k = cache.k + base;
    const float* v = cache.v + base;
    const int end = std::min(last + 1, start + cache.block_size);
    for (int j = start; j < end; ++j, k += stride, v += stride) fn(j, k, v);
  }
}

// One query row and head, in two passes over the visible keys (increasing position): the scores
// and their maximum, then one exp per key and the weighted sum of values. `scores` is scratch.
void attend_one(const PagedKvLayer& cache, const AttentionSeq& seq, int row, int head, int group,
                const float* q, float scale, float* out, std::vector<float>& scores) {
  const int d = cache.head_dim;
  const int kv_head = head / group;
  const int position = seq.ctx_len - seq.q_len + row;
  if (scores.size() < static_cast<std::size_t>(position) + 1) scores.resize(position + 1);
  float max_score = -INFINITY;
  for_each_key(cache, seq.block_table, position, kv_head, [&](int j, const float* k, const float*) {
    scores[j] = dot(q, k, d) * scale;
    max_score = std::max(max_score, scores[j]);
  });
  std::fill_n(out, d, 0.0f);
  float denominator = 0.0f;
  for_each_key(cache, seq.block_table, position, kv_head, [&](int j, const float*, const float* v) {
    const float weight = std::exp(scores[j] - max_score);
    denominator += weight;
    axpy(weight, v, out, d);
  });
  const float inv = 1.0f / denominator;
  for (int i = 0; i < d; ++i) out[i] *= inv;
}

}  // namespace

void write_kv(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const float* k, const float* v) {
  const std::size_t row_floats = static_cast<std::size_t>(cache.num_kv_heads) * cache.head_dim;
  for (const AttentionSeq& seq : seqs) {
    for (int r = 0; r < seq.q_len; ++r) {
      const int position = seq.ctx_len - seq.q_len + r;
      const std::size_t src = static_cast<std::size_t>(seq.q_start + r) * row_floats;
      std::memcpy(const_cast<float*>(slot(cache.k, cache, seq.block_table, position, 0)), k + src, row_floats * sizeof(float));
      std::memcpy(const_cast<float*>(slot(cache.v, cache, seq.block_table, position, 0)), v + src, row_floats * sizeof(float));
    }
  }
}

void write_kv_slots(const PagedKvLayer& cache, const std::int32_t* slot_mapping, int T, const float* k, const float* v) {
  const std::size_t row_floats = static_cast<std::size_t>(cache.num_kv_heads) * cache.head_dim;
  for (int t = 0; t < T; ++t) {
    if (slot_mapping[t] < 0) continue;
    const std::size_t dst = static_cast<std::size_t>(slot_mapping[t]) * row_floats;
    const std::size_t src = static_cast<std::size_t>(t) * row_floats;
    std::memcpy(cache.k + dst, k + src, row_floats * sizeof(float));
    std::memcpy(cache.v + dst, v + src, row_floats * sizeof(float));
  }
}

void paged_attention(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const float* q,
                     int num_heads, float scale, float* out) {
  const int group = num_heads / cache.num_kv_heads;
  const int d = cache.head_dim;
  // Work items are (sequence row, head) pairs; each is computed whole by one thread.
  struct Item { const AttentionSeq* seq; int row; };
  std::vector<Item> items;
  for (const AttentionSeq& seq : seqs)
    for (int r = 0; r < seq.q_len; ++r) items.push_back({&seq, r});
  const std::size_t total = items.size() * num_heads;
  auto work = [&](std::size_t begin, std::size_t end) {
    std::vector<float> scores;  // per thread, grown to the longest context
    for (std::size_t w = begin; w < end; ++w) {
      const Item& item = items[w / num_heads];
      const int head = static_cast<int>(w % num_heads);
      const std::size_t offset = (static_cast<std::size_t>(item.seq->q_start + item.row) * num_heads + head) * d;
      attend_one(cache, *item.seq, item.row, head, group, q + offset, scale, out + offset, scores);
    }
  };
  parallel_for(total, 4, work);
}

}  // namespace loom::kernels::cpu
