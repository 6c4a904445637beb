// The work list of the CUDA paged-attention kernel, built on the host once per step.
//
// A work item is one sequence's tile of query tokens for one KV head, over a range of keys. Its
// rows are (token, query head of the KV head's group) pairs, so grouped-query heads share every
// K/V load. Long contexts with little other work are split over several items (split-K, as in
// flash-decoding) whose partial results a second kernel merges by log-sum-exp. Plain C++: the
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
};

struct AttentionWorkItem {
  std::int32_t seq = 0;
  std::int32_t kv_head = 0;
  std::int32_t q_begin = 0;   // first query token of the tile, relative to the sequence's q_start
  std::int32_t q_count = 0;   // tokens in the tile; rows = q_count * group
  std::int32_t k_begin = 0;   // key positions [k_begin, k_end), further limited per row (causal)
  std::int32_t k_end = 0;
  std::int32_t partial = -1;  // -1: the item writes the output; else its partial-result slot
};

// How each query token's output is assembled: written by its item directly (num_splits <= 1),
// or merged from the partial slots of its tile: query head h reads slots
// first_slot + (h / group) * num_splits + s for s < num_splits, row row_in_tile * group + h % group.
struct TokenCombine {
  std::int32_t first_slot = -1;
  std::int32_t num_splits = 0;
  std::int32_t row_in_tile = 0;
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
  std::vector<TokenCombine> combine;  // one per query token of the batch
  int partial_slots = 0;
  int rows_per_item = 0;              // max rows of any item: tile tokens * group
};

// Query tokens per tile: enough rows (tokens * group) to share K/V loads, at most 16 rows unless
// the group alone is larger.
int tile_tokens(int group);

// Plans the step. seqs[i].q_start must lay the sequences out one after the other over
// num_tokens rows; tokens of no sequence get num_splits == 0 and no item (they stay untouched).
AttentionPlan plan_attention(const std::vector<AttentionSeqMeta>& seqs, int num_tokens, const AttentionPlanLimits& limits);

}  // namespace loom::kernels::cuda
