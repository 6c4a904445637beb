#include "loom/kernels/cpu/paged_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

const float* slot(const float* base, const PagedKvLayer& cache, const std::int32_t* table, int position, int kv_head) {
  std::size_t block = static_cast<std::size_t>(table[position / cache.block_size]);
  std::size_t row = block * cache.block_size + position % cache.block_size;
  return base + (row * cache.num_kv_heads + kv_head) * cache.head_dim;
}

// dot(a, b) over d floats: one 8-lane FMA accumulator, a fixed horizontal sum, the tail in order.
float dot(const float* a, const float* b, int d) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 h = _mm_add_ps(q, _mm_movehl_ps(q, q));
  float s = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

// One query row and head: online softmax over the visible keys, in increasing position.
void attend_one(const PagedKvLayer& cache, const AttentionSeq& seq, int row, int head, int group,
                const float* q, float scale, float* out, std::vector<float>& acc) {
  const int d = cache.head_dim;
  const int kv_head = head / group;
  const int position = seq.ctx_len - seq.q_len + row;
  float running_max = -INFINITY, denominator = 0.0f;
  std::fill(acc.begin(), acc.end(), 0.0f);
  for (int j = 0; j <= position; ++j) {
    const float* key = slot(cache.k, cache, seq.block_table, j, kv_head);
    const float score = dot(q, key, d) * scale;
    float new_max = std::max(running_max, score);
    float correction = std::exp(running_max - new_max);
    float weight = std::exp(score - new_max);
    const float* value = slot(cache.v, cache, seq.block_table, j, kv_head);
    for (int i = 0; i < d; ++i) acc[i] = acc[i] * correction + weight * value[i];
    denominator = denominator * correction + weight;
    running_max = new_max;
  }
  for (int i = 0; i < d; ++i) out[i] = acc[i] / denominator;
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
    std::vector<float> acc(d);
    for (std::size_t w = begin; w < end; ++w) {
      const Item& item = items[w / num_heads];
      const int head = static_cast<int>(w % num_heads);
      const std::size_t offset = (static_cast<std::size_t>(item.seq->q_start + item.row) * num_heads + head) * d;
      attend_one(cache, *item.seq, item.row, head, group, q + offset, scale, out + offset, acc);
    }
  };
  parallel_for(total, 4, work);
}

}  // namespace loom::kernels::cpu
