// The real paged allocator with each evictor on a scan pattern: a hot prompt reused between
// scans of one-off prompts that together overflow the pool. LRU evicts the hot prefix during
// every scan (it is the oldest candidate); ARC keeps it in T2 and evicts the scan blocks from T1.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "plugins/plugin_test_support.h"

namespace loom {
namespace {

using sdk::TokenId;
using testing::iota_tokens;

constexpr std::uint32_t kBlockSize = 4;
constexpr std::uint64_t kNumBlocks = 16;
constexpr int kRounds = 10;
constexpr int kScanPrompts = 6;  // 3 cached blocks each: 18 per scan, more than the pool

void serve(sdk::KvAllocator& a, sdk::SeqId seq, const std::vector<TokenId>& tokens) {
  const std::size_t cached = a.acquire_cached_prefix(seq, tokens, seq);
  ASSERT_TRUE(a.reserve(seq, cached, tokens.size() - cached, seq));
  a.commit(seq, tokens, seq);
  a.release(seq, seq);
}

// Prefix-cache hit blocks over the whole pattern.
std::uint64_t hit_blocks_on_scan_pattern(const std::string& evictor) {
  auto pool = testing::make_pool(testing::engine_info(kNumBlocks, kBlockSize), "paged", evictor);
  auto& a = *pool.allocator;
  const auto hot = iota_tokens(4 * kBlockSize + 1);  // 4 cacheable blocks
  sdk::SeqId seq = 1;
  serve(a, seq++, hot);
  serve(a, seq++, hot);  // reused once: 4 hits, and ARC now counts it as frequent
  TokenId base = 1'000'000;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kScanPrompts; ++i, base += 1000) serve(a, seq++, iota_tokens(3 * kBlockSize + 1, base));
    serve(a, seq++, hot);
  }
  auto st = a.stats();
  EXPECT_EQ(st.used_blocks, 0u);
  EXPECT_GT(st.evictions, 0u) << "the pattern must overflow the pool";
  return st.hit_blocks;
}

TEST(EvictorScan, ArcKeepsTheHotPrefixThroughScansWhereLruLosesIt) {
  std::uint64_t lru = hit_blocks_on_scan_pattern("lru");
  std::uint64_t lfu = hit_blocks_on_scan_pattern("lfu");
  std::uint64_t arc = hit_blocks_on_scan_pattern("arc");
  std::printf("hit blocks on the scan pattern: lru %llu, lfu %llu, arc %llu\n",
              static_cast<unsigned long long>(lru), static_cast<unsigned long long>(lfu),
              static_cast<unsigned long long>(arc));
  EXPECT_EQ(lru, 4u) << "LRU hits only on the immediate reuse";
  EXPECT_EQ(arc, 4u + 4u * kRounds) << "ARC hits the whole hot prefix after every scan";
  EXPECT_GT(arc, lru);
  EXPECT_GT(lfu, lru);
}

}  // namespace
}  // namespace loom
