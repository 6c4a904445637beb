// Paged attention on the GPU: the step's KV-cache write and attention over a mixed batch of
// prefill chunks and decodes, in 16-bit storage with fp32 arithmetic.
//
// Cache layout of one layer (as sdk::KvCacheView): K and V are separate arrays
// [num_blocks, block_size, num_kv_heads, head_dim]. The attention kernel walks the work items of
// attention_plan.h with a fixed grid (grid-stride over the items), and reads how many items there
// are from device memory, so a captured CUDA graph replays with a new plan written into the same
// buffers. It reads the step's own keys and values from k_new / v_new and stores them into the
// cache as it goes, and the last split of a tile to finish merges the tile's partial results, so
// a step without prefill tiles is one launch. head_dim must be a multiple of 8 and at most 256.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/attention_plan.h"
#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

struct PagedAttentionArgs {
  const void* q = nullptr;      // [T, num_heads, head_dim]
  const void* k_new = nullptr;  // the step's keys [T, num_kv_heads, head_dim], stored into the cache
  const void* v_new = nullptr;  // the step's values, likewise
  void* out = nullptr;          // [T, num_heads, head_dim]; rows of no sequence are left untouched
  // [T, num_heads], optional: each row of a CUDA-core item written to `out` also gets its
  // log-sum-exp of scaled scores here, in base 2 (max + log2(sum)), for relay attention's merge.
  float* lse = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  int block_size = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;
  const AttentionSeqMeta* seqs = nullptr;
  const std::int32_t* block_tables = nullptr;
  const AttentionWorkItem* items = nullptr;
  const PrefillTile* prefill_tiles = nullptr;
  int num_prefill_tiles = 0;               // known on the host: prefill steps are never graphs
  // Prefill tiles read the step's K/V from the cache: with any, row t of k_new / v_new is first
  // stored at cache row slots[t] (block * block_size + offset) for t below counts[1]; a negative
  // slot is skipped (padding, or a token whose work item stores it); max_tokens bounds the grid.
  const std::int32_t* slots = nullptr;
  const std::int32_t* counts = nullptr;    // {number of items, number of tokens}
  int max_tokens = 0;
  int rows_per_item = 0;                   // the plan's rows_per_item (partial slot stride)
  float* partial_out = nullptr;            // [slots, rows_per_item, head_dim]
  float* partial_max_sum = nullptr;        // [slots, rows_per_item, 2]
  int* split_counters = nullptr;           // [partial slots], zero before the first launch; left zero
  int grid = 0;                            // CTAs of the attention kernel (attention_grid())
};

// out = softmax(q k^T * scale) v per query head over each token's visible keys, and the step's
// K/V stored into the cache: the prefill tiles on tensor cores (head_dim 64 or 128, after a copy
// of the step's K/V into the cache), the work items on CUDA cores. One launch on `stream`
// without prefill tiles, three with.
bool prefill_kernel_supports(int head_dim);
// As many CTAs of the CUDA-core kernel as fit on the current device at once (0 on error), for a
// KV-head group of `group` query heads: the kernel streams K/V and needs every warp slot to keep
// enough loads in flight.
int attention_grid(DType dtype, int group);
cudaError_t paged_attention(const PagedAttentionArgs& args, DType dtype, cudaStream_t stream);

}  // namespace loom::kernels::cuda
