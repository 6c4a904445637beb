// CPU attention over a paged KV cache, fp32.
//
// Cache layout of one layer: K and V are separate arrays [num_blocks, block_size, num_kv_heads,
// head_dim]. Token position p of a sequence lives in block block_table[p / block_size], slot
// p % block_size.
//
// Batch invariance: each (token, head) output is computed by one thread, over key positions
// in increasing order, with the same arithmetic whatever else is in the batch or however many
// threads run, so a sequence's result is bit-identical alone or in any batch.
#pragma once

#include <cstdint>
#include <span>

namespace loom::kernels::cpu {

struct PagedKvLayer {
  float* k = nullptr;
  float* v = nullptr;
  int block_size = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
};

// One sequence of the batch: query rows [q_start, q_start + q_len); after this step its
// context holds ctx_len tokens whose last q_len are the rows' tokens (causal within it).
struct AttentionSeq {
  int q_start = 0;
  int q_len = 0;
  int ctx_len = 0;
  const std::int32_t* block_table = nullptr;  // at least ceil(ctx_len / block_size) entries
};

// Stores k, v [num_tokens, num_kv_heads, head_dim] into the cache slots of each sequence's new
// tokens (row q_start + r goes to position ctx_len - q_len + r). Rows of no sequence are skipped.
// k and v must not overlap the cache. Single-threaded (a copy of a few KiB per token).
void write_kv(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const float* k, const float* v);

// Same, addressed by slot: row t of k, v [T, num_kv_heads, head_dim] goes to cache row
// slot_mapping[t] = block_id * block_size + offset; a negative slot skips the row (padding).
void write_kv_slots(const PagedKvLayer& cache, const std::int32_t* slot_mapping, int T, const float* k, const float* v);

// out[t, h, :] = softmax_j(q[t, h, :] . K[j, h / group, :] * scale) V[j, h / group, :] over the
// keys j the token may see (j <= its own position), group = num_heads / num_kv_heads.
// q and out are [num_tokens, num_heads, head_dim]; out must not alias q. num_heads is a multiple
// of num_kv_heads; every sequence has 1 <= q_len <= ctx_len, and every cache slot at positions
// < ctx_len is written. Rows of no sequence are left untouched. Mixed batches (prefill chunks and
// decodes) go in one call. Uses the thread pool over (row, head) pairs.
// Arithmetic, in two passes over the keys in increasing position, walking the block table:
// score = dot(q, k) (8-lane fixed order, as in linear) * scale and their maximum; then one exp
// per key, out += weight * v (8-lane FMA), and out /= the sum of weights. Cost: 4 * ctx * d
// flops per (row, head).
void paged_attention(const PagedKvLayer& cache, std::span<const AttentionSeq> seqs, const float* q,
                     int num_heads, float scale, float* out);

}  // namespace loom::kernels::cpu
