// Property test: the fcfs scheduler, paged allocator and lru evictor, driven by MiniEngine with
// random arrivals, prompts (many sharing prefixes), output lengths, budgets and pool sizes.
// MiniEngine checks every step (budgets, reservations, block accounting, sharing only of equal
// full blocks, correct KV under prefix hits); here we add the end-to-end promises: every request
// finishes exactly once with the output it would have alone, or is rejected exactly when it can
// never fit, and no block leaks.
#include <gtest/gtest.h>

#include <random>

#include "plugins/mini_engine.h"

namespace loom {
namespace {

using sdk::SeqId;
using sdk::TokenId;
using testing::MiniEngine;

struct Request {
  std::vector<TokenId> prompt;
  std::size_t max_total;
};

void simulate(std::uint32_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto pick = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  const std::uint32_t block_size = std::array<std::uint32_t, 4>{1, 2, 4, 8}[pick(0, 3)];
  const std::size_t num_blocks = pick(2, 48);
  sdk::EngineInfo info = testing::engine_info(num_blocks, block_size, pick(0, 3) != 0);
  sdk::StepBudget budget{static_cast<std::uint32_t>(pick(1, 8)), static_cast<std::uint32_t>(pick(1, 64))};
  RawSection keys;
  keys.entries["max_prefill_chunk"] = RawEntry{static_cast<std::int64_t>(pick(0, 1) ? 0 : pick(1, 16)), "sim"};
  MiniEngine engine(info, budget, keys);

  // A few shared "system prompts"; a request takes a prefix of one and adds its own suffix.
  std::vector<std::vector<TokenId>> bases(3);
  for (auto& b : bases)
    for (std::size_t i = 0, n = pick(4, 40); i < n; ++i) b.push_back(static_cast<TokenId>(pick(0, 999)));

  const std::size_t num_requests = pick(8, 40);
  std::map<SeqId, Request> requests;
  SeqId next_id = 1;
  for (std::size_t step = 0; step < 20000; ++step) {
    // Arrivals: in bursts early on, then the queue drains.
    while (next_id <= num_requests && pick(0, 2) == 0) {
      Request r;
      if (pick(0, 3) != 0) {
        const auto& b = bases[pick(0, bases.size() - 1)];
        r.prompt.assign(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(pick(1, b.size())));
      }
      for (std::size_t i = 0, n = pick(r.prompt.empty() ? 1 : 0, 12); i < n; ++i)
        r.prompt.push_back(static_cast<TokenId>(pick(0, 999)));
      r.max_total = r.prompt.size() + pick(1, 24);
      engine.submit(next_id, r.prompt, r.max_total);
      requests[next_id++] = std::move(r);
    }
    if (next_id > num_requests && engine.num_live() == 0) break;
    if (engine.num_live() == 0) continue;
    auto plan = engine.step();
    ASSERT_FALSE(::testing::Test::HasFailure());
    ASSERT_FALSE(plan.scheduled.empty() && plan.rejected.empty() && plan.preempted.empty())
        << "stall with " << engine.num_live() << " sequences";
  }
  ASSERT_EQ(engine.num_live(), 0u) << "work left after the step limit";
  ASSERT_EQ(next_id, num_requests + 1);

  for (const auto& [id, r] : requests) {
    std::size_t blocks = (r.max_total + block_size - 1) / block_size;
    bool fits = blocks <= num_blocks;
    EXPECT_EQ(engine.rejected().count(id), fits ? 0u : 1u) << "request " << id;
    EXPECT_EQ(engine.finished().count(id), fits ? 1u : 0u) << "request " << id;
    if (!fits) continue;
    auto want = r.prompt;
    while (want.size() < r.max_total) want.push_back(MiniEngine::next_token(want));
    EXPECT_EQ(engine.finished().at(id), want) << "request " << id;
  }
  auto st = engine.allocator().stats();
  EXPECT_EQ(st.used_blocks, 0u) << "blocks leaked";
  EXPECT_EQ(st.free_blocks + st.cached_blocks, num_blocks);
  EXPECT_EQ(st.copies, 0u);
  if (!info.prefix_caching) {
    EXPECT_EQ(st.cached_blocks, 0u);
  }
}

TEST(FcfsSimulation, RandomWorkloadsKeepEveryInvariant) {
  for (std::uint32_t seed = 1; seed <= 300; ++seed) {
    simulate(seed);
    if (::testing::Test::HasFailure()) break;  // one seed's story is enough to debug
  }
}

}  // namespace
}  // namespace loom
