#include "loom/kernels/cuda/attention_plan.h"

#include <algorithm>

namespace loom::kernels::cuda {

int tile_tokens(int group) { return std::max(1, 16 / std::max(1, group)); }

bool goes_to_prefill_kernel(int q_len, const AttentionPlanLimits& limits) {
  return limits.prefill_min_q_len > 0 && q_len >= limits.prefill_min_q_len;
}

AttentionPlan plan_attention(const std::vector<AttentionSeqMeta>& seqs, const AttentionPlanLimits& limits) {
  AttentionPlan plan;
  const int group = std::max(1, limits.group);
  const int tile = tile_tokens(group);
  plan.rows_per_item = tile * group;

  // Without splitting, one item per (tile, KV head); split only when that leaves SMs idle.
  auto is_prefill = [&](const AttentionSeqMeta& s) { return goes_to_prefill_kernel(s.q_len, limits); };
  long base_items = 0;
  for (const AttentionSeqMeta& s : seqs)
    if (!is_prefill(s)) base_items += static_cast<long>((s.q_len + tile - 1) / tile) * limits.num_kv_heads;
  const int wanted_splits =
      base_items == 0 ? 1 : static_cast<int>(std::max<long>(1, (limits.target_items + base_items - 1) / base_items));

  for (std::int32_t si = 0; si < static_cast<std::int32_t>(seqs.size()); ++si) {
    const AttentionSeqMeta& s = seqs[si];
    if (is_prefill(s)) {  // written directly by the prefill kernel
      for (int q0 = 0; q0 < s.q_len; q0 += kPrefillTileRows)
        plan.prefill_tiles.push_back({si, q0, std::min(kPrefillTileRows, s.q_len - q0)});
      continue;
    }
    const int first_pos = s.ctx_len - s.q_len;  // position of the sequence's first query token
    for (int q0 = 0; q0 < s.q_len; q0 += tile) {
      const int count = std::min(tile, s.q_len - q0);
      const int keys = first_pos + q0 + count;  // the tile's last row sees keys [k_first, keys)
      const int span = keys - s.k_first;
      int splits = std::min(wanted_splits, std::max(1, span / std::max(1, limits.min_keys_per_split)));
      if (splits > 1 && plan.partial_slots + splits * limits.num_kv_heads > limits.max_partial_slots) splits = 1;
      const int first_slot = splits > 1 ? plan.partial_slots : -1;
      if (splits > 1) plan.partial_slots += splits * limits.num_kv_heads;
      // Even ranges: none is empty (splits <= span), and the merge waits for every one of them.
      auto split_begin = [&](int sp) {
        return s.k_first + static_cast<int>(static_cast<long long>(span) * sp / splits);
      };
      for (int h = 0; h < limits.num_kv_heads; ++h) {
        for (int sp = 0; sp < splits; ++sp) {
          AttentionWorkItem item;
          item.seq = si;
          item.kv_head = h;
          item.q_begin = q0;
          item.q_count = count;
          item.k_begin = split_begin(sp);
          item.k_end = split_begin(sp + 1);
          item.partial = splits > 1 ? first_slot + h * splits + sp : -1;
          item.split = sp;
          item.num_splits = splits;
          plan.items.push_back(item);
        }
      }
    }
  }
  return plan;
}

}  // namespace loom::kernels::cuda
