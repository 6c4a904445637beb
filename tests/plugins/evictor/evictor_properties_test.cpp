// Properties every evictor must have, checked against a reference model that knows only which
// blocks are candidates: random sequences of add/remove/evict/on_hit/on_miss, several seeds.
// evict() returns a current candidate and removes it; num_candidates() is exact; a removed or
// evicted block never comes back from evict() until it is added again.
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "plugins/evictor/evictor_test_support.h"

namespace loom {
namespace {

using sdk::BlockHash;
using sdk::BlockId;

struct Case {
  std::string evictor;
  std::uint32_t seed;
};

// Keeps ctest's test names readable instead of a byte dump of the parameter.
void PrintTo(const Case& c, std::ostream* os) { *os << c.evictor << " seed " << c.seed; }

class EvictorProperties : public ::testing::TestWithParam<Case> {};

constexpr BlockId kNumBlocks = 32;
constexpr int kOps = 20000;

TEST_P(EvictorProperties, RandomOperationsKeepTheCandidateSetExact) {
  auto e = testing::make_evictor(GetParam().evictor, kNumBlocks);
  std::mt19937 rng(GetParam().seed);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  // Hashes from a small pool repeat, so hits, ghosts and the odd collision all happen; one in
  // four lookups is for content never seen, as a caller reporting unrelated misses would.
  auto some_hash = [&]() -> BlockHash {
    return pick(4) == 0 ? BlockHash{rng()} << 16 | 0xffff : static_cast<BlockHash>(pick(48));
  };

  std::set<BlockId> candidates;  // the reference model
  std::vector<BlockId> scratch;
  for (int op = 0; op < kOps; ++op) {
    int kind = pick(10);
    if (kind < 3) {  // add a block that is not a candidate
      if (candidates.size() == static_cast<std::size_t>(kNumBlocks)) continue;
      BlockId b;
      do b = static_cast<BlockId>(pick(kNumBlocks));
      while (candidates.contains(b));
      e->add_candidate(b, some_hash(), op);
      candidates.insert(b);
    } else if (kind < 5) {  // a prefix hit takes a candidate back
      if (candidates.empty()) continue;
      scratch.assign(candidates.begin(), candidates.end());
      BlockId b = scratch[static_cast<std::size_t>(pick(static_cast<int>(scratch.size())))];
      e->remove_candidate(b, op);
      candidates.erase(b);
    } else if (kind < 7) {
      if (candidates.empty()) continue;
      BlockId victim = e->evict(op);
      ASSERT_TRUE(candidates.contains(victim)) << "op " << op << ": evicted non-candidate " << victim;
      candidates.erase(victim);
    } else if (kind < 9) {
      e->on_hit(some_hash(), op);
    } else {
      e->on_miss(some_hash(), op);
    }
    ASSERT_EQ(e->num_candidates(), candidates.size()) << "op " << op;
  }
  // Draining returns every remaining candidate exactly once.
  while (!candidates.empty()) {
    BlockId victim = e->evict(kOps);
    ASSERT_EQ(candidates.erase(victim), 1u) << "drain evicted " << victim;
    ASSERT_EQ(e->num_candidates(), candidates.size());
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const char* name : {"lru", "lfu", "arc"})
    for (std::uint32_t seed : {1u, 2u, 3u, 42u, 2024u}) cases.push_back({name, seed});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(AllEvictors, EvictorProperties, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.evictor + "_seed" + std::to_string(info.param.seed);
                         });

}  // namespace
}  // namespace loom
