// kv_allocator/paged, loaded from its .so with the real lru evictor: reference counts, prefix
// cache, copy-on-write, exhaustion, eviction and statistics.
#include <gtest/gtest.h>

#include <vector>

#include "plugins/plugin_test_support.h"
#include "support/expect_error.h"

namespace loom {
namespace {

using sdk::BlockId;
using sdk::TokenId;
using testing::engine_info;
using testing::iota_tokens;
using testing::make_pool;

std::vector<BlockId> table_of(const sdk::KvAllocator& a, sdk::SeqId seq) {
  auto t = a.block_table(seq);
  return {t.begin(), t.end()};
}

// Runs `seq` through a full prefill of `tokens`: acquire, reserve, commit.
std::size_t prefill(sdk::KvAllocator& a, sdk::SeqId seq, std::span<const TokenId> tokens) {
  std::size_t cached = a.acquire_cached_prefix(seq, tokens, 0);
  EXPECT_TRUE(a.reserve(seq, cached, tokens.size() - cached, 0));
  a.commit(seq, tokens, 0);
  return cached;
}

TEST(PagedAllocator, RefusesAnEmptyPool) {
  std::string msg = testing::message_of<ConfigError>([] { make_pool(engine_info(0, 4)); });
  EXPECT_CONTAINS(msg, "num_blocks");
  EXPECT_CONTAINS(msg, "at least one");
}

TEST(PagedAllocator, ReserveGrowsTheTableAndReleaseFreesIt) {
  auto pool = make_pool(engine_info(8, 4));
  auto& a = *pool.allocator;
  EXPECT_EQ(a.blocks_needed(1, 0, 9), 3u);
  ASSERT_TRUE(a.reserve(1, 0, 9, 0));
  EXPECT_EQ(a.block_table(1).size(), 3u);
  EXPECT_EQ(a.blocks_needed(1, 9, 3), 0u);
  ASSERT_TRUE(a.reserve(1, 9, 3, 0));
  EXPECT_EQ(a.block_table(1).size(), 3u);
  EXPECT_EQ(a.num_available_blocks(), 5u);
  EXPECT_EQ(a.stats().used_blocks, 3u);
  a.release(1, 0);  // nothing committed: no content, blocks go straight back to free
  EXPECT_TRUE(a.block_table(1).empty());
  auto st = a.stats();
  EXPECT_EQ(st.free_blocks, 8u);
  EXPECT_EQ(st.cached_blocks, 0u);
  a.release(1, 0);  // releasing a sequence without a table is a no-op
  EXPECT_EQ(a.stats().free_blocks, 8u);
}

TEST(PagedAllocator, SecondSequenceWithTheSamePrefixSharesFullBlocksOnly) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(10);  // 2 full blocks + 2 tokens
  EXPECT_EQ(prefill(a, 1, prompt), 0u);
  EXPECT_EQ(a.num_cached_prefix_tokens(prompt), 8u);
  EXPECT_EQ(prefill(a, 2, prompt), 8u);
  auto t1 = table_of(a, 1), t2 = table_of(a, 2);
  ASSERT_EQ(t1.size(), 3u);
  ASSERT_EQ(t2.size(), 3u);
  EXPECT_EQ(t1[0], t2[0]);
  EXPECT_EQ(t1[1], t2[1]);
  EXPECT_NE(t1[2], t2[2]);  // the partial block is never shared
  EXPECT_EQ(a.stats().used_blocks, 4u);
  // Both hold the shared blocks: releasing one keeps them in use.
  a.release(1, 0);
  EXPECT_EQ(a.stats().used_blocks, 3u);
  EXPECT_EQ(a.stats().cached_blocks, 0u);
  a.release(2, 0);
  auto st = a.stats();
  EXPECT_EQ(st.cached_blocks, 2u);
  EXPECT_EQ(st.free_blocks, 14u);
  EXPECT_EQ(pool.evictor->num_candidates(), 2u);
  // A prompt that diverges in the second block hits only the first.
  auto other = prompt;
  other[5] = 99;
  EXPECT_EQ(a.num_cached_prefix_tokens(other), 4u);
  EXPECT_EQ(prefill(a, 3, other), 4u);
  EXPECT_EQ(pool.evictor->num_candidates(), 1u);  // the hit took its block back into use
}

TEST(PagedAllocator, AtLeastTheLastTokenIsComputed) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(8);  // exactly two full blocks
  prefill(a, 1, prompt);
  EXPECT_EQ(a.num_cached_prefix_tokens(prompt), 4u);
  EXPECT_EQ(a.acquire_cached_prefix(2, prompt, 0), 4u);
  auto one = iota_tokens(1);
  EXPECT_EQ(a.acquire_cached_prefix(3, one, 0), 0u);
  EXPECT_EQ(a.acquire_cached_prefix(4, std::span<const TokenId>{}, 0), 0u);
}

TEST(PagedAllocator, LookupsAreReportedAsHitsAndMisses) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(13);
  prefill(a, 1, prompt);  // three lookups, first misses: 1 lookup, 0 hits
  auto st = a.stats();
  EXPECT_EQ(st.lookup_blocks, 1u);
  EXPECT_EQ(st.hit_blocks, 0u);
  auto other = prompt;
  other[9] = -5;
  prefill(a, 2, other);  // blocks 0,1 hit, block 2 misses
  st = a.stats();
  EXPECT_EQ(st.lookup_blocks, 4u);
  EXPECT_EQ(st.hit_blocks, 2u);
}

TEST(PagedAllocator, ForkSharesBlocksAndCopiesOnWrite) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(6);  // one full block + 2 tokens in block 1
  prefill(a, 1, prompt);
  a.fork(1, 2, 0);
  auto parent = table_of(a, 1);
  EXPECT_EQ(table_of(a, 2), parent);
  EXPECT_EQ(a.stats().used_blocks, 2u);
  // The child writes token 6, in shared block 1: it gets a private copy of it.
  EXPECT_EQ(a.blocks_needed(2, 6, 1), 1u);
  ASSERT_TRUE(a.reserve(2, 6, 1, 0));
  auto child = table_of(a, 2);
  EXPECT_EQ(child[0], parent[0]);
  EXPECT_NE(child[1], parent[1]);
  auto copies = a.take_pending_copies();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].src, parent[1]);
  EXPECT_EQ(copies[0].dst, child[1]);
  EXPECT_TRUE(a.take_pending_copies().empty());
  EXPECT_EQ(a.stats().copies, 1u);
  // Block 1 now has one owner: the parent writes in place, no copy.
  ASSERT_TRUE(a.reserve(1, 6, 1, 0));
  EXPECT_EQ(table_of(a, 1), parent);
  EXPECT_TRUE(a.take_pending_copies().empty());
  a.release(1, 0);
  a.release(2, 0);
  auto st = a.stats();
  EXPECT_EQ(st.used_blocks, 0u);
  EXPECT_EQ(st.free_blocks + st.cached_blocks, 16u);
}

TEST(PagedAllocator, ForkAtABlockBoundaryNeedsNoCopy) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(4);
  ASSERT_TRUE(a.reserve(1, 0, 8, 0));  // a spare block reserved ahead
  a.commit(1, prompt, 0);
  a.fork(1, 2, 0);
  ASSERT_TRUE(a.reserve(2, 4, 1, 0));  // writes into shared block 1, which holds nothing yet
  EXPECT_NE(table_of(a, 2)[1], table_of(a, 1)[1]);
  EXPECT_TRUE(a.take_pending_copies().empty());
  EXPECT_EQ(a.stats().copies, 0u);
}

// reserve() is told where the writes begin: every shared block the range touches becomes private,
// and only the one holding slots before `start` is copied.
TEST(PagedAllocator, ReserveMakesEverySharedBlockOfTheWrittenRangePrivate) {
  auto pool = make_pool(engine_info(16, 4));
  auto& a = *pool.allocator;
  ASSERT_TRUE(a.reserve(1, 0, 12, 0));  // three blocks, the third reserved ahead
  a.commit(1, iota_tokens(6), 0);
  a.fork(1, 2, 0);
  const auto parent = table_of(a, 1);
  EXPECT_EQ(a.blocks_needed(2, 6, 4), 2u);  // slots 6..9: blocks 1 and 2, both shared
  ASSERT_TRUE(a.reserve(2, 6, 4, 0));
  const auto child = table_of(a, 2);
  EXPECT_EQ(child[0], parent[0]);  // not written: still shared
  EXPECT_NE(child[1], parent[1]);
  EXPECT_NE(child[2], parent[2]);
  const auto copies = a.take_pending_copies();
  ASSERT_EQ(copies.size(), 1u);  // block 1 holds tokens 4 and 5, which the child keeps
  EXPECT_EQ(copies[0].src, parent[1]);
  EXPECT_EQ(copies[0].dst, child[1]);
  EXPECT_EQ(a.blocks_needed(1, 6, 6), 0u);  // the parent's blocks 1 and 2 are its own again
  ASSERT_TRUE(a.reserve(1, 6, 6, 0));
  EXPECT_EQ(table_of(a, 1), parent);
  EXPECT_TRUE(a.take_pending_copies().empty());
}

TEST(PagedAllocator, ExhaustionFailsWithoutChangingAnything) {
  auto pool = make_pool(engine_info(4, 4));
  auto& a = *pool.allocator;
  ASSERT_TRUE(a.reserve(1, 0, 12, 0));
  auto before = a.stats();
  auto table = table_of(a, 1);
  EXPECT_FALSE(a.reserve(1, 12, 8, 0));  // needs 2 more, 1 left
  EXPECT_FALSE(a.reserve(2, 0, 8, 0));
  EXPECT_EQ(table_of(a, 1), table);
  EXPECT_TRUE(a.block_table(2).empty());
  auto after = a.stats();
  EXPECT_EQ(after.free_blocks, before.free_blocks);
  EXPECT_EQ(after.used_blocks, before.used_blocks);
  EXPECT_TRUE(a.reserve(2, 0, 4, 0));
  EXPECT_EQ(a.num_available_blocks(), 0u);
}

TEST(PagedAllocator, EvictsLeastRecentlyReleasedAndReportsIt) {
  auto pool = make_pool(engine_info(4, 2));
  auto& a = *pool.allocator;
  auto p1 = iota_tokens(3, 100), p2 = iota_tokens(3, 200);
  prefill(a, 1, p1);
  prefill(a, 2, p2);
  BlockId b1 = table_of(a, 1)[0], b2 = table_of(a, 2)[0];
  a.release(1, 1);  // p1's full block becomes a candidate first
  a.release(2, 2);
  EXPECT_EQ(a.stats().cached_blocks, 2u);
  EXPECT_EQ(a.num_available_blocks(), 4u);
  ASSERT_TRUE(a.reserve(3, 0, 6, 3));  // 3 blocks: 2 free, then evict the oldest candidate
  auto ev = a.take_evictions();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].block, b1);
  EXPECT_EQ(a.num_cached_prefix_tokens(p1), 0u);
  EXPECT_EQ(a.num_cached_prefix_tokens(p2), 2u);
  EXPECT_TRUE(a.take_evictions().empty());
  EXPECT_EQ(a.stats().evictions, 1u);
  ASSERT_TRUE(a.reserve(3, 6, 2, 4));
  ev = a.take_evictions();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].block, b2);
}

TEST(PagedAllocator, PrefixHitProtectsACandidateFromEviction) {
  auto pool = make_pool(engine_info(3, 2));
  auto& a = *pool.allocator;
  auto p1 = iota_tokens(3, 100), p2 = iota_tokens(3, 200);
  prefill(a, 1, p1);
  a.release(1, 1);
  prefill(a, 2, p2);
  a.release(2, 2);  // candidates in LRU order: p1's block, p2's block
  EXPECT_EQ(a.acquire_cached_prefix(3, p1, 3), 2u);  // p1's block back in use
  ASSERT_TRUE(a.reserve(3, 2, 2, 4));                // takes the one free block
  ASSERT_TRUE(a.reserve(4, 0, 2, 5));                // must evict p2's, the only candidate
  EXPECT_EQ(a.num_cached_prefix_tokens(p1), 2u);
  EXPECT_EQ(a.num_cached_prefix_tokens(p2), 0u);
}

TEST(PagedAllocator, DuplicateContentKeepsTheFirstBlockFindable) {
  auto pool = make_pool(engine_info(8, 4));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(5);
  // Both start before either committed: no hit, two copies of the same full block.
  EXPECT_EQ(a.acquire_cached_prefix(1, prompt, 0), 0u);
  EXPECT_EQ(a.acquire_cached_prefix(2, prompt, 0), 0u);
  ASSERT_TRUE(a.reserve(1, 0, 5, 0));
  ASSERT_TRUE(a.reserve(2, 0, 5, 0));
  a.commit(1, prompt, 0);
  a.commit(2, prompt, 0);
  BlockId first = table_of(a, 1)[0];
  EXPECT_EQ(a.acquire_cached_prefix(3, prompt, 0), 4u);
  EXPECT_EQ(table_of(a, 3)[0], first);
  a.release(3, 0);
  a.release(2, 0);  // its duplicate block is private: freed, not cached
  a.release(1, 0);
  auto st = a.stats();
  EXPECT_EQ(st.cached_blocks, 1u);
  EXPECT_EQ(st.free_blocks, 7u);
}

TEST(PagedAllocator, PrefixCachingOffNeverShares) {
  auto pool = make_pool(engine_info(8, 4, /*prefix_caching=*/false));
  auto& a = *pool.allocator;
  auto prompt = iota_tokens(9);
  EXPECT_EQ(prefill(a, 1, prompt), 0u);
  EXPECT_EQ(a.num_cached_prefix_tokens(prompt), 0u);
  EXPECT_EQ(prefill(a, 2, prompt), 0u);
  a.release(1, 0);
  a.release(2, 0);
  auto st = a.stats();
  EXPECT_EQ(st.cached_blocks, 0u);
  EXPECT_EQ(st.free_blocks, 8u);
  EXPECT_EQ(st.lookup_blocks, 0u);
  EXPECT_EQ(pool.evictor->num_candidates(), 0u);
}

TEST(PagedAllocator, CommitBeyondReservedSlotsIsRefused) {
  auto pool = make_pool(engine_info(8, 4));
  auto& a = *pool.allocator;
  ASSERT_TRUE(a.reserve(1, 0, 4, 0));
  auto tokens = iota_tokens(5);
  std::string msg = testing::message_of<Error>([&] { a.commit(1, tokens, 0); });
  EXPECT_CONTAINS(msg, "reserved");
}

}  // namespace
}  // namespace loom
