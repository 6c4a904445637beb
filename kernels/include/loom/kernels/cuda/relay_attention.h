// Relay attention's shared-prefix pass on the GPU (Zhu et al., ACL 2024): the query rows of every
// sequence that shares a prefix attend to the prefix's keys in one pass that reads each cached
// key once per tile of 32 rows, not once per sequence; the result is merged exactly into what
// paged attention wrote for the rest of each context (its output and base-2 log-sum-exp,
// PagedAttentionArgs::lse, with AttentionSeqMeta::k_first at the prefix's end).
//
// Two launches on `stream`: the prefix pass (CTAs of 32 rows x one KV head x a chunk of the
// prefix, grid-stride) writes unnormalised partial results per chunk, and the merge folds them
// and paged attention's result into `out`. How many rows, keys and chunks there are is read from
// device memory, so a captured CUDA graph replays with a new plan written into the same buffers;
// zero rows is a valid plan (both kernels return at once). head_dim: a multiple of 8, at most 256.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "loom/kernels/cuda/dtype.h"

namespace loom::kernels::cuda {

struct RelayAttentionArgs {
  const void* q = nullptr;        // [T, num_heads, head_dim]
  void* out = nullptr;            // [T, num_heads, head_dim]: paged attention's result on entry
  const float* lse = nullptr;     // [T, num_heads]: paged attention's log-sum-exp (base 2)
  const void* k_cache = nullptr;  // one layer, [num_blocks, block_size, num_kv_heads, head_dim]
  const void* v_cache = nullptr;
  int block_size = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;
  const std::int32_t* rows = nullptr;           // the sharing query rows (indexes into q), counts[0] of them
  const std::int32_t* prefix_blocks = nullptr;  // block ids holding prefix keys [0, counts[1])
  // Device memory: {rows, prefix keys, keys per chunk}; keys per chunk > 0 when rows > 0.
  const std::int32_t* counts = nullptr;
  float* partial = nullptr;  // [chunks, rows, num_heads, head_dim + 2]: acc, then max and sum
  int grid = 0;              // CTAs of the prefix pass (relay_attention_grid())
};

// CTAs of the prefix pass that fit on the current device at once (0 on error).
int relay_attention_grid(DType dtype, int head_dim);
cudaError_t relay_attention(const RelayAttentionArgs& args, DType dtype, cudaStream_t stream);

}  // namespace loom::kernels::cuda
