// evictor/arc, loaded from its .so: hand-computed traces of ARC's lists and its target p.
// p is not observable directly; a probe reads it from REPLACE, which evicts from T1 exactly
// when |T1| > p: with T2 non-empty, |T1| = p + 1 evicts from T1 and |T1| = p from T2.
#include <gtest/gtest.h>

#include "plugins/evictor/evictor_test_support.h"

namespace loom {
namespace {

using testing::make_evictor;
using testing::reuse;

// T1 = [0, 1, 2] in order of admission: without any reuse ARC is LRU.
TEST(ArcEvictor, OneOffBlocksLeaveInOrderOfRelease) {
  auto e = make_evictor("arc", 32);
  for (sdk::BlockId b = 0; b < 3; ++b) e->add_candidate(b, 100 + static_cast<sdk::BlockHash>(b), 0);
  EXPECT_EQ(e->evict(0), 0);
  EXPECT_EQ(e->evict(0), 1);
  EXPECT_EQ(e->evict(0), 2);
  EXPECT_EQ(e->num_candidates(), 0u);
}

// With p = 0, T1 goes first whenever it is non-empty, even if its blocks are newer.
TEST(ArcEvictor, ReusedContentMovesToT2AndOutlivesOneOffs) {
  auto e = make_evictor("arc", 32);
  e->add_candidate(0, 100, 0);
  reuse(*e, 0, 100);            // T2 = [0]
  e->add_candidate(1, 101, 0);  // T1 = [1]
  e->add_candidate(2, 102, 0);
  e->on_hit(102, 0);  // a hit on a candidate moves it to T2 at once: T2 = [0, 2]
  EXPECT_EQ(e->evict(0), 1);
  EXPECT_EQ(e->evict(0), 0);
  EXPECT_EQ(e->evict(0), 2);
}

TEST(ArcEvictor, HitsWhileInUseSendTheBlockToT2OnRelease) {
  auto e = make_evictor("arc", 32);
  e->on_hit(200, 0);            // shared by a second sequence while the first still runs
  e->add_candidate(5, 200, 0);  // T2 = [5]
  e->add_candidate(6, 201, 0);  // T1 = [6]
  EXPECT_EQ(e->evict(0), 6);
  EXPECT_EQ(e->evict(0), 5);
}

// B1 ghost hits raise p by max(1, |B2| / |B1|), a B2 ghost hit lowers it by max(1, |B1| / |B2|).
TEST(ArcEvictor, TargetRisesOnB1GhostHitsAndFallsOnB2GhostHits) {
  auto e = make_evictor("arc", 32);
  for (sdk::BlockId b = 2; b <= 4; ++b) {
    e->add_candidate(b, 100 + static_cast<sdk::BlockHash>(b), 0);
    reuse(*e, b, 100 + static_cast<sdk::BlockHash>(b));
  }
  e->add_candidate(0, 100, 0);
  e->add_candidate(1, 101, 0);  // T1 = [0, 1], T2 = [2, 3, 4]
  for (sdk::BlockId b = 0; b <= 4; ++b) EXPECT_EQ(e->evict(0), b);
  // B1 = [100, 101], B2 = [102, 103, 104], p = 0
  e->on_miss(100, 0);  // |B1| 2, |B2| 3: p = 0 + max(1, 3/2) = 1
  e->on_miss(101, 0);  // |B1| 1, |B2| 3: p = 1 + 3 = 4
  e->on_miss(102, 0);  // |B1| 0, |B2| 3: p = 4 - max(1, 0/3) = 3
  e->on_miss(999, 0);  // not a ghost: no change
  // Probe p = 3. Ghost-hit content enters T2 when admitted.
  e->add_candidate(5, 100, 0);
  e->add_candidate(6, 101, 0);  // T2 = [5, 6]
  for (sdk::BlockId b = 7; b <= 10; ++b) e->add_candidate(b, 200 + static_cast<sdk::BlockHash>(b), 0);
  EXPECT_EQ(e->evict(0), 7);  // |T1| 4 > 3
  EXPECT_EQ(e->evict(0), 5);  // |T1| 3, not > 3
  EXPECT_EQ(e->num_candidates(), 4u);
}

TEST(ArcEvictor, TargetFallsByTheGhostRatioOnAB2Hit) {
  auto e = make_evictor("arc", 32);
  e->add_candidate(0, 100, 0);
  e->add_candidate(1, 101, 0);
  reuse(*e, 0, 100);
  reuse(*e, 1, 101);  // T2 = [0, 1]
  for (sdk::BlockId b = 2; b <= 10; ++b) e->add_candidate(b, 100 + static_cast<sdk::BlockHash>(b), 0);
  for (sdk::BlockId b = 2; b <= 10; ++b) EXPECT_EQ(e->evict(0), b);
  EXPECT_EQ(e->evict(0), 0);
  EXPECT_EQ(e->evict(0), 1);
  // B1 = [102 .. 110] (9), B2 = [100, 101] (2); |B2| / |B1| < 1, so each B1 hit adds 1.
  for (sdk::BlockHash h = 102; h <= 105; ++h) e->on_miss(h, 0);  // p = 4, |B1| = 5
  e->on_miss(100, 0);  // B2 hit: p = 4 - max(1, 5/2) = 2
  e->add_candidate(11, 100, 0);  // T2 = [11]
  for (sdk::BlockId b = 12; b <= 14; ++b) e->add_candidate(b, 300 + static_cast<sdk::BlockHash>(b), 0);
  EXPECT_EQ(e->evict(0), 12);  // |T1| 3 > 2
  EXPECT_EQ(e->evict(0), 11);  // |T1| 2, not > 2
}

// c = 4: |T1| + |B1| <= 4 keeps only the 4 newest ghosts, so the oldest is forgotten.
TEST(ArcEvictor, GhostListsAreBoundedByTheCacheSize) {
  auto e = make_evictor("arc", 4);
  for (sdk::BlockId b = 0; b < 8; ++b) {
    e->add_candidate(b % 4, 100 + static_cast<sdk::BlockHash>(b), 0);
    EXPECT_EQ(e->evict(0), b % 4);
  }
  // B1 = [104 .. 107]; 100 was dropped.
  e->on_miss(100, 0);  // not a ghost any more: p stays 0
  e->on_miss(107, 0);  // p = 1
  e->add_candidate(0, 107, 0);  // T2 = [0]
  e->add_candidate(1, 200, 0);
  e->add_candidate(2, 201, 0);  // T1 = [1, 2]
  EXPECT_EQ(e->evict(0), 1);  // |T1| 2 > 1
  EXPECT_EQ(e->evict(0), 0);  // |T1| 1, not > 1 (p would be 2 had 100 still been a ghost)
}

// A frequently used set F lives in T2; a long scan of one-off blocks (each reported as a miss,
// then admitted) must only ever evict scan blocks, oldest first.
TEST(ArcEvictor, AScanOfOneOffBlocksDoesNotEvictTheFrequentSet) {
  auto e = make_evictor("arc", 16);
  for (sdk::BlockId b = 0; b < 4; ++b) {
    e->add_candidate(b, 100 + static_cast<sdk::BlockHash>(b), 0);
    reuse(*e, b, 100 + static_cast<sdk::BlockHash>(b));
  }
  constexpr int kWindow = 8;  // scan blocks alive at once
  for (int i = 0; i < 500; ++i) {
    sdk::BlockId b = 4 + i % kWindow;
    if (i >= kWindow) {
      ASSERT_EQ(e->evict(0), b) << "scan step " << i;
    }
    sdk::BlockHash h = 10000 + static_cast<sdk::BlockHash>(i);
    e->on_miss(h, 0);
    e->add_candidate(b, h, 0);
  }
  EXPECT_EQ(e->num_candidates(), 4u + kWindow);
  for (int i = 500; i < 500 + kWindow; ++i) EXPECT_EQ(e->evict(0), 4 + i % kWindow);
  for (sdk::BlockId b = 0; b < 4; ++b) EXPECT_EQ(e->evict(0), b);
}

}  // namespace
}  // namespace loom
