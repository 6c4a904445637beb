// evictor/lfu, loaded from its .so: hand-computed traces of frequency order, the tie-break and
// dynamic aging (priority K = frequency + L, L = K of the last victim).
#include <gtest/gtest.h>

#include "plugins/evictor/evictor_test_support.h"
#include "support/expect_error.h"

namespace loom {
namespace {

using testing::make_evictor;
using testing::reuse;
using testing::string_key;

TEST(LfuEvictor, EvictsTheLeastFrequentlyReferencedContentFirst) {
  auto e = make_evictor("lfu", 16);
  e->add_candidate(0, 100, 0);  // count 1
  e->add_candidate(1, 101, 0);
  e->add_candidate(2, 102, 0);
  reuse(*e, 0, 100);  // count 2
  reuse(*e, 0, 100);  // count 3
  reuse(*e, 2, 102);  // count 2
  EXPECT_EQ(e->num_candidates(), 3u);
  EXPECT_EQ(e->evict(0), 1);  // K = 1, L becomes 1
  EXPECT_EQ(e->evict(0), 2);  // K = 2
  EXPECT_EQ(e->evict(0), 0);  // K = 3
  EXPECT_EQ(e->num_candidates(), 0u);
}

TEST(LfuEvictor, HitsWhileInUseCountTowardsTheNextAdmission) {
  auto e = make_evictor("lfu", 16);
  e->on_hit(200, 0);  // shared while its first sequence still ran: count 2
  e->on_hit(200, 0);  // count 3
  e->add_candidate(5, 200, 0);
  e->add_candidate(6, 201, 0);  // count 1, added later
  EXPECT_EQ(e->evict(0), 6);
  EXPECT_EQ(e->evict(0), 5);
}

TEST(LfuEvictor, AHitOnACandidateRaisesItsPriorityAtOnce) {
  auto e = make_evictor("lfu", 16);
  e->add_candidate(0, 100, 0);
  e->add_candidate(1, 101, 0);
  e->on_hit(100, 0);  // block 0 stays a candidate with count 2
  EXPECT_EQ(e->evict(0), 1);
  EXPECT_EQ(e->evict(0), 0);
}

TEST(LfuEvictor, TiesGoToTheCandidateAddedLongestAgo) {
  auto e = make_evictor("lfu", 16);
  e->add_candidate(3, 103, 0);
  e->add_candidate(1, 101, 0);
  e->add_candidate(2, 102, 0);
  e->remove_candidate(3, 0);  // back in use without a counted hit, then released again
  e->add_candidate(3, 103, 0);
  EXPECT_EQ(e->evict(0), 1);  // all K = 1 (each victim sets L = 1; nothing is re-added)
  EXPECT_EQ(e->evict(0), 2);
  EXPECT_EQ(e->evict(0), 3);
}

TEST(LfuEvictor, EvictionForgetsTheCountOfTheContent) {
  auto e = make_evictor("lfu", 16);
  e->add_candidate(0, 100, 0);
  reuse(*e, 0, 100);
  reuse(*e, 0, 100);  // count 3, K = 3
  EXPECT_EQ(e->evict(0), 0);  // L = 3
  e->add_candidate(0, 100, 0);  // recomputed: count 1 again, K = 1 + 3 = 4
  e->add_candidate(1, 101, 0);  // K = 4, added later
  EXPECT_EQ(e->evict(0), 0);
}

// Block 0 becomes popular (count 4, K = 4 at L = 0), then a stream of one-off blocks each gets
// K = 1 + L and is evicted, raising L by one each time: 1, 2, 3. The fourth one-off has K = 4,
// tying with block 0, which was added earlier and so goes first.
TEST(LfuEvictor, DynamicAgingLetsOldPopularityDecay) {
  auto e = make_evictor("lfu", 16);
  e->add_candidate(0, 100, 0);
  for (int i = 0; i < 3; ++i) reuse(*e, 0, 100);
  for (sdk::BlockId b = 1; b <= 3; ++b) {
    e->add_candidate(b, 1000 + static_cast<sdk::BlockHash>(b), 0);  // K = 1 + L = b
    EXPECT_EQ(e->evict(0), b) << "one-off block " << b << " has K " << b << " < 4";
  }
  e->add_candidate(4, 1004, 0);  // K = 4
  EXPECT_EQ(e->evict(0), 0) << "the aged popular block must go on the tie";
  EXPECT_EQ(e->evict(0), 4);
}

TEST(LfuEvictor, WithoutAgingOldPopularityStaysForever) {
  auto e = make_evictor("lfu", 16, string_key("aging", "none"));
  e->add_candidate(0, 100, 0);
  for (int i = 0; i < 3; ++i) reuse(*e, 0, 100);
  for (sdk::BlockId b = 1; b <= 50; ++b) {
    e->add_candidate(b % 8 + 1, 1000 + static_cast<sdk::BlockHash>(b), 0);
    EXPECT_EQ(e->evict(0), b % 8 + 1);
  }
  EXPECT_EQ(e->evict(0), 0);
}

TEST(LfuEvictor, RefusesAnUnknownAgingVariant) {
  std::string msg =
      testing::message_of<ConfigError>([] { make_evictor("lfu", 16, string_key("aging", "halving")); });
  EXPECT_CONTAINS(msg, "aging");
  EXPECT_CONTAINS(msg, "dynamic");
}

}  // namespace
}  // namespace loom
