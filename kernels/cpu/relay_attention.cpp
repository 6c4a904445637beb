#include "loom/kernels/cpu/relay_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention_math.h"
#include "loom/kernels/cpu/parallel_for.h"

namespace loom::kernels::cpu {

namespace {

constexpr int kRowsPerChunk = 8;  // member rows of one shared-pass work item

// One (row, head)'s online softmax: the running maximum, sum of weights and weighted values.
struct Running {
  float max = -INFINITY;
  float sum = 0.0f;
  float* out = nullptr;  // head_dim floats, the running output
};

// Adds keys [0, count) of one cache block (K and V rows `stride` floats apart) to `r`.
void add_block(const float* q, const float* k, const float* v, std::size_t stride, int count, int d, float scale,
               Running& r, float* scores) {
  float block_max = -INFINITY;
  for (int j = 0; j < count; ++j) {
    scores[j] = attention_math::dot(q, k + j * stride, d) * scale;
    block_max = std::max(block_max, scores[j]);
  }
  const float new_max = std::max(r.max, block_max);
  const float rescale = std::exp(r.max - new_max);  // 0 for the first block
  r.sum *= rescale;
  for (int i = 0; i < d; ++i) r.out[i] *= rescale;
  for (int j = 0; j < count; ++j) {
    const float weight = std::exp(scores[j] - new_max);
    r.sum += weight;
    attention_math::axpy(weight, v + j * stride, r.out, d);
  }
  r.max = new_max;
}

}  // namespace

void relay_attention(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const SharedPrefix& prefix,
                     const float* q, int num_heads, float scale, float* out) {
  const int group = num_heads / cache.num_kv_heads;
  const int d = cache.head_dim, bs = cache.block_size;
  const std::size_t stride = static_cast<std::size_t>(cache.num_kv_heads) * d;
  auto block_rows = [&](std::int32_t block, int kv_head) {
    return (static_cast<std::size_t>(block) * bs * cache.num_kv_heads + kv_head) * d;
  };
  // Every (row, head) of the batch, its running state kept in `out` itself.
  struct Item {
    const AttentionSeq* seq;
    int row;
    int shared_blocks;  // prefix blocks the shared pass adds
  };
  std::vector<int> shared_of(seqs.size(), 0);
  for (int m : prefix.members) shared_of[static_cast<std::size_t>(m)] = prefix.num_blocks;
  std::vector<Item> items;
  std::vector<std::size_t> member_items;  // indexes into items, in member order
  for (std::size_t s = 0; s < seqs.size(); ++s)
    for (int r = 0; r < seqs[s].q_len; ++r) {
      if (shared_of[s] > 0) member_items.push_back(items.size());
      items.push_back({&seqs[s], r, shared_of[s]});
    }
  std::vector<Running> state(items.size() * num_heads);
  for (std::size_t i = 0; i < items.size(); ++i)
    for (int h = 0; h < num_heads; ++h) {
      Running& r = state[i * num_heads + h];
      r.out = out + (static_cast<std::size_t>(items[i].seq->q_start + items[i].row) * num_heads + h) * d;
      std::fill_n(r.out, d, 0.0f);
    }
  auto query = [&](const Item& item, int head) {
    return q + (static_cast<std::size_t>(item.seq->q_start + item.row) * num_heads + head) * d;
  };

  // The shared pass: per (KV head, chunk of member rows), each prefix block read once for them.
  const std::size_t chunks = (member_items.size() + kRowsPerChunk - 1) / kRowsPerChunk;
  parallel_for(chunks * cache.num_kv_heads, 1, [&](std::size_t begin, std::size_t end) {
    std::vector<float> scores(static_cast<std::size_t>(bs));
    for (std::size_t w = begin; w < end; ++w) {
      const int kv_head = static_cast<int>(w % cache.num_kv_heads);
      const std::size_t first = (w / cache.num_kv_heads) * kRowsPerChunk;
      const std::size_t last = std::min(member_items.size(), first + kRowsPerChunk);
      for (int b = 0; b < prefix.num_blocks; ++b) {
        const std::size_t base = block_rows(prefix.block_table[b], kv_head);
        for (std::size_t m = first; m < last; ++m)
          for (int h = kv_head * group; h < (kv_head + 1) * group; ++h)
            add_block(query(items[member_items[m]], h), cache.k + base, cache.v + base, stride, bs, d, scale,
                      state[member_items[m] * num_heads + h], scores.data());
      }
    }
  });

  // The own pass: each (row, head) adds the blocks after its shared ones, up to its position.
  parallel_for(items.size() * num_heads, 4, [&](std::size_t begin, std::size_t end) {
    std::vector<float> scores(static_cast<std::size_t>(bs));
    for (std::size_t w = begin; w < end; ++w) {
      const Item& item = items[w / num_heads];
      const int head = static_cast<int>(w % num_heads), kv_head = head / group;
      const int position = item.seq->ctx_len - item.seq->q_len + item.row;
      Running& r = state[w];
      for (int b = item.shared_blocks, start = b * bs; start <= position; ++b, start += bs) {
        const std::size_t base = block_rows(item.seq->block_table[b], kv_head);
        add_block(query(item, head), cache.k + base, cache.v + base, stride, std::min(bs, position + 1 - start), d,
                  scale, r, scores.data());
      }
      const float inv = 1.0f / r.sum;
      for (int i = 0; i < d; ++i) r.out[i] *= inv;
    }
  });
}

}  // namespace loom::kernels::cpu
