// scheduler/fcfs, loaded from its .so and driven with the real paged allocator and lru evictor
// through a model-free engine loop: budgets, chunked prefill, decode, preemption, rejection and
// FIFO fairness.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "plugins/mini_engine.h"
#include "support/expect_error.h"

namespace loom {
namespace {

using sdk::ScheduledSeq;
using sdk::SeqId;
using testing::engine_info;
using testing::iota_tokens;
using testing::MiniEngine;

std::optional<ScheduledSeq> find(const sdk::SchedulePlan& plan, SeqId id) {
  for (const auto& s : plan.scheduled)
    if (s.id == id) return s;
  return std::nullopt;
}

// What a sequence generates when it runs alone: the reference for outputs under preemption.
std::vector<sdk::TokenId> generate(std::vector<sdk::TokenId> tokens, std::size_t max_total) {
  while (tokens.size() < max_total) tokens.push_back(MiniEngine::next_token(tokens));
  return tokens;
}

TEST(FcfsScheduler, StaysWithinBothBudgets) {
  MiniEngine engine(engine_info(64, 4), {.max_num_seqs = 4, .max_num_batched_tokens = 12});
  for (SeqId id = 1; id <= 6; ++id) engine.submit(id, iota_tokens(5, 100 * static_cast<int>(id)), 8);
  auto plan = engine.step();
  ASSERT_EQ(plan.scheduled.size(), 3u);  // 5 + 5 + a 2-token chunk of the third
  EXPECT_EQ(plan.scheduled[2].id, 3u);
  EXPECT_EQ(plan.scheduled[2].num_tokens, 2u);
  plan = engine.step();  // two decodes, the rest of seq 3, and seq 4 up to the seq budget
  ASSERT_EQ(plan.scheduled.size(), 4u);
  EXPECT_EQ(plan.scheduled[0].num_tokens, 1u);
  EXPECT_EQ(plan.scheduled[2].id, 3u);
  EXPECT_EQ(plan.scheduled[2].start, 2u);
  EXPECT_EQ(plan.scheduled[2].num_tokens, 3u);
  EXPECT_EQ(plan.scheduled[3].id, 4u);
  engine.run_to_completion();  // MiniEngine checks the budgets at every step
  EXPECT_EQ(engine.finished().size(), 6u);
}

TEST(FcfsScheduler, ChunksALongPrefillThenDecodes) {
  MiniEngine engine(engine_info(64, 4), {.max_num_seqs = 4, .max_num_batched_tokens = 8});
  engine.submit(1, iota_tokens(20), 22);
  std::vector<std::pair<std::size_t, std::size_t>> chunks;
  while (engine.num_live() > 0) {
    auto plan = engine.step();
    ASSERT_EQ(plan.scheduled.size(), 1u);
    chunks.emplace_back(plan.scheduled[0].start, plan.scheduled[0].num_tokens);
  }
  std::vector<std::pair<std::size_t, std::size_t>> want{{0, 8}, {8, 8}, {16, 4}, {20, 1}};
  EXPECT_EQ(chunks, want);
  EXPECT_EQ(engine.finished().at(1), generate(iota_tokens(20), 22));
}

TEST(FcfsScheduler, MaxPrefillChunkLimitsEachChunk) {
  RawSection keys;
  keys.entries["max_prefill_chunk"] = RawEntry{std::int64_t{3}, "test"};
  MiniEngine engine(engine_info(64, 4), {.max_num_seqs = 4, .max_num_batched_tokens = 100}, keys);
  engine.submit(1, iota_tokens(7), 9);
  std::vector<std::size_t> sizes;
  while (engine.num_live() > 0) sizes.push_back(engine.step().scheduled.at(0).num_tokens);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 1, 1}));
}

TEST(FcfsScheduler, RefusesANegativeChunkLimit) {
  RawSection keys;
  keys.entries["max_prefill_chunk"] = RawEntry{std::int64_t{-1}, "test.toml:3"};
  std::string msg =
      testing::message_of<ConfigError>([&] { testing::make_plugin<sdk::Scheduler>("fcfs", engine_info(8, 4), keys); });
  EXPECT_CONTAINS(msg, "max_prefill_chunk");
  EXPECT_CONTAINS(msg, "test.toml:3");
}

RawSection reserve_keys(double output_reserve, bool learn = true) {
  RawSection keys;
  keys.entries["output_reserve"] = RawEntry{output_reserve, "test"};
  keys.entries["learn_output_share"] = RawEntry{learn, "test"};
  return keys;
}

TEST(FcfsScheduler, PreemptsTheNewestAndResumesItFirstWithoutAnOutputReserve) {
  // 4 blocks of 2 tokens; three sequences that grow to 6 tokens cannot all stay. Admitted as
  // their prompts fit (output_reserve 0), they must push each other out.
  MiniEngine engine(engine_info(4, 2), {.max_num_seqs = 8, .max_num_batched_tokens = 64}, reserve_keys(0.0));
  for (SeqId id = 1; id <= 3; ++id) engine.submit(id, iota_tokens(2, 10 * static_cast<int>(id)), 6);
  EXPECT_EQ(engine.step().scheduled.size(), 3u);
  auto plan = engine.step();
  ASSERT_EQ(plan.preempted, std::vector<SeqId>{3});
  EXPECT_TRUE(find(plan, 1) && find(plan, 2));
  engine.submit(4, iota_tokens(2, 40), 4);  // arrives after seq 3 was preempted
  std::vector<SeqId> admitted;              // order in which 3 and 4 are (re)started
  for (int i = 0; i < 200 && engine.num_live() > 0; ++i) {
    const auto* s3 = engine.find(3);
    const auto* s4 = engine.find(4);
    bool wait3 = s3 && s3->state == sdk::SeqState::waiting;
    bool wait4 = s4 && s4->state == sdk::SeqState::waiting;
    plan = engine.step();
    for (const auto& p : plan.preempted) EXPECT_NE(p, 1u) << "the oldest sequence was preempted";
    if (wait3 && find(plan, 3)) admitted.push_back(3);
    if (wait4 && find(plan, 4)) admitted.push_back(4);
  }
  ASSERT_GE(admitted.size(), 2u);
  EXPECT_EQ(admitted[0], 3u);
  ASSERT_EQ(engine.finished().size(), 4u);
  for (SeqId id = 1; id <= 3; ++id)
    EXPECT_EQ(engine.finished().at(id), generate(iota_tokens(2, 10 * static_cast<int>(id)), 6));
}

TEST(FcfsScheduler, AFullOutputReserveAdmitsOnlyWhatRunsToMaxTokensWithoutPreemption) {
  // The same pool and sequences as above: at the default reserve each admitted sequence keeps
  // room to reach max_tokens, so they run one or two at a time and nobody is preempted.
  MiniEngine engine(engine_info(4, 2), {.max_num_seqs = 8, .max_num_batched_tokens = 64});
  for (SeqId id = 1; id <= 3; ++id) engine.submit(id, iota_tokens(2, 10 * static_cast<int>(id)), 6);
  std::size_t most_running = 0;
  for (int i = 0; i < 200 && engine.num_live() > 0; ++i) {
    EXPECT_TRUE(engine.step().preempted.empty());
    most_running = std::max(most_running, engine.num_running());
  }
  EXPECT_EQ(engine.num_preemptions(), 0u);
  EXPECT_EQ(most_running, 1u) << "3 blocks each, 4 in the pool";
  ASSERT_EQ(engine.finished().size(), 3u);
  for (SeqId id = 1; id <= 3; ++id)
    EXPECT_EQ(engine.finished().at(id), generate(iota_tokens(2, 10 * static_cast<int>(id)), 6));
}

TEST(FcfsScheduler, ShortRequestsRunBesideLongOnesBecauseTheyFinishFirst) {
  // Two requests growing to 64 tokens (16 blocks each) and six of 8 tokens (2 blocks each) on 40
  // blocks: their final sizes add up to 44, but the short ones finish long before the long ones
  // peak, so all eight run at once, and nobody is preempted.
  MiniEngine engine(engine_info(40, 4), {.max_num_seqs = 16, .max_num_batched_tokens = 256});
  engine.submit(1, iota_tokens(4, 10), 64);
  engine.submit(2, iota_tokens(4, 20), 64);
  for (SeqId id = 3; id <= 8; ++id) engine.submit(id, iota_tokens(4, 10 * static_cast<int>(id)), 8);
  engine.step();
  EXPECT_EQ(engine.num_running(), 8u);
  engine.run_to_completion();
  EXPECT_EQ(engine.finished().size(), 8u);
  EXPECT_EQ(engine.num_preemptions(), 0u);
}

TEST(FcfsScheduler, AHalfOutputReserveAdmitsMoreAndPreemptsLessThanNone) {
  // 40 sequences of 8 + 24 tokens on 64 blocks of 4 (256 slots; all of them would need 320).
  auto run = [](double reserve, std::size_t* most_running) {
    MiniEngine engine(engine_info(64, 4), {.max_num_seqs = 64, .max_num_batched_tokens = 512},
                      reserve_keys(reserve, false));
    for (SeqId id = 1; id <= 40; ++id) engine.submit(id, iota_tokens(8, 10 * static_cast<int>(id)), 32);
    *most_running = 0;
    for (int i = 0; i < 2000 && engine.num_live() > 0; ++i) {
      engine.step();
      *most_running = std::max(*most_running, engine.num_running());
    }
    EXPECT_EQ(engine.finished().size(), 40u);
    return engine.num_preemptions();
  };
  std::size_t running_full = 0, running_half = 0, running_none = 0;
  const std::uint64_t full = run(1.0, &running_full), half = run(0.5, &running_half), none = run(0.0, &running_none);
  EXPECT_EQ(full, 0u);
  EXPECT_LE(running_full, 8u) << "8 blocks each at the full reserve";
  EXPECT_GT(running_half, running_full);
  EXPECT_LT(half, none);
  EXPECT_GT(none, 0u);
}

TEST(FcfsScheduler, LearnsThatRequestsStopEarlyAndRunMoreAtOnce) {
  // max_tokens allows 60 tokens, but every request stops (EOS) after 4: once the first ones have
  // finished, the learned share lets many run together where the full reserve allows two (16
  // blocks each at max_tokens; 34 in the pool, two to spare for the projection's rounding).
  auto most_running = [](bool learn) {
    MiniEngine engine(engine_info(34, 4), {.max_num_seqs = 64, .max_num_batched_tokens = 512},
                      reserve_keys(1.0, learn));
    for (SeqId id = 1; id <= 48; ++id) engine.submit(id, iota_tokens(4, 10 * static_cast<int>(id)), 64, 8);
    std::size_t most = 0;
    for (int i = 0; i < 2000 && engine.num_live() > 0; ++i) {
      engine.step();
      most = std::max(most, engine.num_running());
    }
    EXPECT_EQ(engine.finished().size(), 48u);
    return most;
  };
  EXPECT_EQ(most_running(false), 2u);
  EXPECT_GE(most_running(true), 8u);
}

TEST(FcfsScheduler, RefusesAnOutputReserveOutsideZeroToOne) {
  std::string msg = testing::message_of<ConfigError>(
      [&] { testing::make_plugin<sdk::Scheduler>("fcfs", engine_info(8, 4), reserve_keys(1.5)); });
  EXPECT_CONTAINS(msg, "output_reserve");
  EXPECT_CONTAINS(msg, "between 0 and 1");
}

TEST(FcfsScheduler, RejectsWhatCanNeverFitAndServesTheRest) {
  MiniEngine engine(engine_info(4, 4), {.max_num_seqs = 8, .max_num_batched_tokens = 64});
  engine.submit(1, iota_tokens(10), 40);  // 40 tokens = 10 blocks > 4
  engine.submit(2, {}, 4);
  engine.submit(3, iota_tokens(3, 50), 6);
  auto plan = engine.step();
  ASSERT_EQ(plan.rejected.size(), 2u);
  EXPECT_EQ(plan.rejected[0].id, 1u);
  EXPECT_CONTAINS(plan.rejected[0].reason, "40 tokens");
  EXPECT_CONTAINS(plan.rejected[0].reason, "10 blocks of 4 tokens");
  EXPECT_CONTAINS(plan.rejected[0].reason, "only 4 blocks");
  EXPECT_EQ(plan.rejected[1].id, 2u);
  EXPECT_CONTAINS(plan.rejected[1].reason, "no tokens");
  EXPECT_TRUE(find(plan, 3));
  engine.run_to_completion();
  EXPECT_EQ(engine.finished().size(), 1u);
  EXPECT_EQ(engine.rejected().size(), 2u);
}

TEST(FcfsScheduler, ALaterSmallRequestNeverOvertakesTheHeadOfTheQueue) {
  MiniEngine engine(engine_info(8, 4), {.max_num_seqs = 8, .max_num_batched_tokens = 64});
  engine.submit(1, iota_tokens(20), 28);  // takes 5 of 8 blocks, grows to 7
  engine.step();
  engine.submit(2, iota_tokens(16, 100), 20);  // needs 4 blocks: must wait for seq 1
  engine.submit(3, iota_tokens(2, 200), 4);    // would fit now, but arrived later
  bool started2 = false;
  int steps_waited = 0;
  while (engine.num_live() > 0 && steps_waited < 500) {
    auto plan = engine.step();
    if (find(plan, 2)) started2 = true;
    if (find(plan, 3)) {
      EXPECT_TRUE(started2) << "seq 3 overtook seq 2";
    }
    ++steps_waited;
  }
  EXPECT_EQ(engine.finished().size(), 3u);
}

TEST(FcfsScheduler, PrefixHitsSkipCachedTokens) {
  MiniEngine engine(engine_info(32, 4), {.max_num_seqs = 8, .max_num_batched_tokens = 64});
  engine.submit(1, iota_tokens(10), 12);
  engine.run_to_completion();
  engine.submit(2, iota_tokens(10), 12);
  auto plan = engine.step();
  ASSERT_EQ(plan.scheduled.size(), 1u);
  EXPECT_EQ(plan.scheduled[0].start, 8u);
  EXPECT_EQ(plan.scheduled[0].num_tokens, 2u);
  engine.run_to_completion();
  EXPECT_EQ(engine.finished().at(2), generate(iota_tokens(10), 12));
}

}  // namespace
}  // namespace loom
