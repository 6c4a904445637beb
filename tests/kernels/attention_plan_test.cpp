// The CUDA attention planner is plain C++: its split-K decisions and key coverage are checked on
// the CPU, in every build.
#include "loom/kernels/cuda/attention_plan.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace loom::kernels::cuda {
namespace {

namespace kc = loom::kernels::cuda;

TEST(AttentionPlan, SplitsOnlyWhenItemsAreFewAndCoversEveryKeyOnce) {
  kc::AttentionPlanLimits limits;
  limits.num_kv_heads = 2;
  limits.group = 4;
  limits.target_items = 64;
  limits.max_partial_slots = 1000;
  // One long decode: 2 base items -> split into chunks of >= 256 keys.
  auto plan = kc::plan_attention({{0, 1, 3000, 0}}, limits);
  ASSERT_GT(plan.items.size(), 2u);
  const int splits = plan.items[0].num_splits;
  EXPECT_EQ(splits * 2, static_cast<int>(plan.items.size()));
  for (int h = 0; h < 2; ++h) {
    int covered = 0, next_key = 0, next_split = 0;
    for (const auto& item : plan.items)
      if (item.kv_head == h) {
        EXPECT_GE(item.k_end - item.k_begin, 256);
        EXPECT_EQ(item.k_begin, next_key) << "ranges follow each other";
        // The merge finds the tile's slots from any of its items.
        EXPECT_EQ(item.split, next_split++);
        EXPECT_EQ(item.num_splits, splits);
        EXPECT_EQ(item.partial - item.split, h * splits);
        next_key = item.k_end;
        covered += item.k_end - item.k_begin;
      }
    EXPECT_EQ(covered, 3000) << "every key of head " << h << " exactly once";
  }
  // Enough work already: no split, one item per (tile, KV head); tiles of 16 / group tokens.
  std::vector<kc::AttentionSeqMeta> many;
  for (int i = 0; i < 40; ++i) many.push_back({i, 1, 2000, 0});
  plan = kc::plan_attention(many, limits);
  EXPECT_EQ(plan.items.size(), 80u);
  EXPECT_EQ(plan.partial_slots, 0);
  plan = kc::plan_attention({{0, 9, 9, 0}}, limits);
  EXPECT_EQ(plan.rows_per_item, 16);
  EXPECT_EQ(plan.items.size(), 2u * 3u) << "9 tokens in tiles of 4 tokens x 2 KV heads";
  // No room for partial results: no split.
  limits.max_partial_slots = 0;
  plan = kc::plan_attention({{0, 1, 3000, 0}}, limits);
  EXPECT_EQ(plan.items.size(), 2u);
  // Split ranges are never empty, even when the keys barely cover the splits.
  limits.max_partial_slots = 1000;
  limits.min_keys_per_split = 1;
  plan = kc::plan_attention({{0, 1, 70, 0}}, limits);
  ASSERT_GT(plan.items.size(), 2u * 30u);
  for (const auto& item : plan.items) EXPECT_LT(item.k_begin, item.k_end);
}

TEST(AttentionPlan, KFirstStartsEveryItemOfTheSequenceThereAndSplitsOnlyTheRest) {
  kc::AttentionPlanLimits limits;
  limits.num_kv_heads = 2;
  limits.group = 1;
  limits.target_items = 64;
  limits.min_keys_per_split = 32;
  limits.max_partial_slots = 1000;
  // A sequence attending keys [1000, 1100) after a shared prefix of 1000, beside a whole one.
  const auto plan = kc::plan_attention({{0, 1, 1100, 0, 1000}, {1, 2, 300, 0, 0}}, limits);
  int covered[2][2] = {{0, 0}, {0, 0}};
  for (const auto& item : plan.items) {
    EXPECT_GE(item.k_begin, item.seq == 0 ? 1000 : 0);
    EXPECT_LT(item.k_begin, item.k_end);
    covered[item.seq][item.kv_head] += item.k_end - item.k_begin;
    if (item.seq == 0) {
      EXPECT_LE(item.num_splits, 100 / 32) << "splits of the 100 keys it attends, not 1100";
    }
  }
  for (int h = 0; h < 2; ++h) {
    EXPECT_EQ(covered[0][h], 100);
    EXPECT_EQ(covered[1][h], 300);
  }
}

TEST(AttentionPlan, SequencesGoToPrefillTilesExactlyWhenGoesToPrefillKernelSaysSo) {
  kc::AttentionPlanLimits limits;
  limits.num_kv_heads = 2;
  limits.group = 4;
  limits.max_partial_slots = 1000;
  const std::vector<kc::AttentionSeqMeta> seqs = {{0, 100, 100, 0}, {100, 1, 40, 7}, {101, 15, 60, 10}, {116, 16, 16, 14}};
  for (int min_q_len : {0, 16, 101}) {
    limits.prefill_min_q_len = min_q_len;
    const kc::AttentionPlan plan = kc::plan_attention(seqs, limits);
    for (int i = 0; i < static_cast<int>(seqs.size()); ++i) {
      const bool tiles = std::any_of(plan.prefill_tiles.begin(), plan.prefill_tiles.end(),
                                     [&](const kc::PrefillTile& t) { return t.seq == i; });
      const bool items = std::any_of(plan.items.begin(), plan.items.end(),
                                     [&](const kc::AttentionWorkItem& w) { return w.seq == i; });
      EXPECT_EQ(tiles, kc::goes_to_prefill_kernel(seqs[i].q_len, limits)) << "sequence " << i << ", min " << min_q_len;
      EXPECT_NE(tiles, items) << "sequence " << i << " is in exactly one of the two kernels";
    }
  }
  limits.prefill_min_q_len = 16;
  EXPECT_FALSE(kc::goes_to_prefill_kernel(15, limits));
  EXPECT_TRUE(kc::goes_to_prefill_kernel(16, limits));
}

}  // namespace
}  // namespace loom::kernels::cuda
