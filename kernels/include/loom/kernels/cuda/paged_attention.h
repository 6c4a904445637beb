// Paged attention on the GPU: the KV-cache write and attention over a mixed batch of prefill
// chunks and decodes, in 16-bit storage with fp32 arithmetic.
//
// Cache layout of one layer (as sdk::KvCacheView): K and V are separate arrays
// [num_blocks, block_size, num_kv_heads, head_dim]. The attention kernel walks the work items of
// attention_plan.h with a fixed grid (grid-stride over the items), and reads how many items and
// tokens there are from device memory, so a captured CUDA graph replays with a new plan written
// into the same buffers. head_dim must be a multiple of 8 and at most 256.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/attention_plan.h"
#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

// Row t of k, v [T, num_kv_heads, head_dim] goes to cache row slot_mapping[t] (block * block_size
// + offset); a negative slot skips the row (padding). T is read from *num_tokens on the device;
// max_tokens bounds the grid.
cudaError_t write_kv(const void* k, const void* v, const std::int32_t* slot_mapping, const std::int32_t* num_tokens,
                     int max_tokens, int num_kv_heads, int head_dim, void* k_cache, void* v_cache, DType dtype,
                     cudaStream_t stream);

struct PagedAttentionArgs {
  const void* q = nullptr;   // [T, num_heads, head_dim]
  void* out = nullptr;       // [T, num_heads, head_dim]; rows of no sequence are left untouched
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
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
  const TokenCombine* combine = nullptr;   // [max_tokens]
  const std::int32_t* counts = nullptr;    // {number of items, number of tokens}
  int max_tokens = 0;                      // bounds the merge kernel's grid
  int rows_per_item = 0;                   // the plan's rows_per_item (partial slot stride)
  float* partial_out = nullptr;            // [slots, rows_per_item, head_dim]
  float* partial_max_sum = nullptr;        // [slots, rows_per_item, 2]
  int grid = 0;                            // CTAs of the attention kernel (attention_grid())
};

// out = softmax(q k^T * scale) v per query head over each token's visible keys: the prefill
// tiles on tensor cores (head_dim 64 or 128), the work items on CUDA cores, then the merge of
// split items. Up to three launches on `stream`.
bool prefill_kernel_supports(int head_dim);
// As many CTAs of the CUDA-core kernel as fit on the current device at once (0 on error): the
// kernel streams K/V and needs every warp slot to keep enough loads in flight.
int attention_grid(DType dtype);
cudaError_t paged_attention(const PagedAttentionArgs& args, DType dtype, cudaStream_t stream);

}  // namespace loom::kernels::cuda
