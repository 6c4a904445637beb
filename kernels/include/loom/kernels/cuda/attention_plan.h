// The work list of the CUDA paged-attention kernel, built on the host once per step.
//
// A work item is one sequence's tile of query tokens for one KV head, over a range of keys. Its
// rows are (token, query head of the KV head's group) pairs, so grouped-query heads share every
// K/V load. Long contexts with little other work are split over several items (split-K, as in
// flash-decoding) whose partial results the last of them to finish merges by log-sum-exp. Plain C++: the
// planner is tested on the CPU; the kernel that reads the plan is in paged_attention.h.
#pragma once

#include <cstdint>
#include <vector>

namespace loom::kernels::cuda {

struct AttentionSeqMeta {
  std::int32_t q_start = 0;       // first query row of the batch
  std::int32_t q_len = 0;
  std::int32_t ctx_len = 0;       // tokens in context after this step; the last q_len are the rows
  std::int32_t table_offset = 0;  // where the block table starts in the flattened tables
  // Keys before this position are not attended here: relay attention attends a shared prefix in
  // a pass of its own and merges (0: the whole context). Only for sequences of CUDA-core items.
  std::int32_t k_first = 0;
};

struct AttentionWorkItem {
  std::int32_t seq = 0;
  std::int32_t kv_head = 0;
  std::int32_t q_begin = 0;   // first query token of the tile, relative to the sequence's q_start
  std::int32_t q_count = 0;   // tokens in the tile; rows = q_count * group
  std::int32_t k_begin = 0;   // key positions [k_begin, k_end), further limited per row (causal)
  std::int32_t k_end = 0;
  std::int32_t partial = -1;  // -1: the item writes the output; else its partial-result slot
  // Split-K: the tile's items for this KV head hold slots partial - split + s, s < num_splits
  // (row r of a slot is row r of the tile); whichever finishes last merges them into the output.
  std::int32_t split = 0;
  std::int32_t num_splits = 1;
};

// A tile of up to kPrefillTileRows query tokens of one sequence, for every query head: run by
// the tensor-core prefill kernel (flash-attention style), which writes the output directly.
inline constexpr int kPrefillTileRows = 128;

struct PrefillTile {
  std::int32_t seq = 0;
  std::int32_t q_begin = 0;  // relative to the sequence's q_start
  std::int32_t q_count = 0;  // <= kPrefillTileRows
};

struct AttentionPlanLimits {
  int num_kv_heads = 0;
  int group = 1;                 // query heads per KV head
  int target_items = 264;        // split-K until about this many items exist (2 per SM)
  int min_keys_per_split = 256;
  int max_partial_slots = 0;     // capacity of the partial-result buffer, in slots
  int prefill_min_q_len = 0;     // sequences with at least this many query tokens go to prefill
                                 // tiles (0: never; the head size must suit the tensor-core kernel)
};

struct AttentionPlan {
  std::vector<PrefillTile> prefill_tiles;
  std::vector<AttentionWorkItem> items;
  int partial_slots = 0;
  int rows_per_item = 0;              // max rows of any item: tile tokens * group
};

// Query tokens per tile: enough rows (tokens * group) to share K/V loads, at most 16 rows unless
// the group alone is larger.
int tile_tokens(int group);

// Whether a sequence with q_len query tokens this step goes to the tensor-core prefill tiles.
bool goes_to_prefill_kernel(int q_len, const AttentionPlanLimits& limits);

// Plans the step. seqs[i].q_start must lay the sequences out one after the other; rows of no
// sequence (padding) get no item and stay untouched.
AttentionPlan plan_attention(const std::vector<AttentionSeqMeta>& seqs, const AttentionPlanLimits& limits);

}  // namespace loom::kernels::cuda
