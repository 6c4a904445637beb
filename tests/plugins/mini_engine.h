// A model-free stand-in for the engine loop (ARCHITECTURE.md section 5) that drives a real
// scheduler, allocator and evictor, applies each plan as the engine would, and checks after
// every step what the SDK promises: budgets, reservations, releases, block accounting, and that
// every KV slot a sequence reads holds exactly the token it should (a fake KV cache records which
// token was written where, so a wrong prefix hit or a lost copy shows up as a mismatch).
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "plugins/plugin_test_support.h"

namespace loom::testing {

class MiniEngine {
 public:
  struct Seq {
    sdk::SeqId id = 0;
    std::vector<sdk::TokenId> tokens;
    std::size_t num_prompt = 0;
    std::size_t computed = 0;
    std::size_t max_total = 0;
    std::size_t stop_at = 0;  // finishes at this many tokens, before max_total (as at an EOS); 0: none
    sdk::Tick arrival = 0;
    sdk::SeqState state = sdk::SeqState::waiting;
  };

  MiniEngine(const sdk::EngineInfo& info, sdk::StepBudget budget, RawSection scheduler_keys = {})
      : pool_(make_pool(info)),
        scheduler_(make_plugin<sdk::Scheduler>("fcfs", info, std::move(scheduler_keys))),
        budget_(budget),
        kv_(info.num_blocks * info.block_size, -1) {}

  void submit(sdk::SeqId id, std::vector<sdk::TokenId> prompt, std::size_t max_total, std::size_t stop_at = 0) {
    Seq s;
    s.id = id;
    s.num_prompt = prompt.size();
    s.tokens = std::move(prompt);
    s.max_total = max_total;
    s.stop_at = stop_at;
    s.arrival = now_;
    live_.push_back(std::move(s));
  }

  // Plans one step, checks the plan and applies it. Returns the plan for tests to inspect.
  sdk::SchedulePlan step() {
    std::vector<sdk::SequenceView> views;
    for (const Seq& s : live_)
      views.push_back({s.id, s.state, s.tokens, s.num_prompt, s.computed, s.max_total, s.arrival, 0});
    sdk::SchedulePlan plan = scheduler_->schedule(views, *pool_.allocator, budget_, now_);
    check_plan(plan);
    num_preemptions_ += plan.preempted.size();
    apply(plan);
    check_pool();
    ++now_;
    return plan;
  }

  // Steps until no work is left; fails the test on a stall or after `max_steps`.
  void run_to_completion(std::size_t max_steps = 100000) {
    for (std::size_t i = 0; i < max_steps && !live_.empty(); ++i) {
      auto plan = step();
      if (plan.scheduled.empty() && plan.rejected.empty() && plan.preempted.empty()) {
        ADD_FAILURE() << "stall at step " << now_ << " with " << live_.size() << " sequences left";
        return;
      }
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_TRUE(live_.empty()) << "unfinished after " << max_steps << " steps";
  }

  const Seq* find(sdk::SeqId id) const {
    for (const Seq& s : live_)
      if (s.id == id) return &s;
    return nullptr;
  }

  sdk::KvAllocator& allocator() { return *pool_.allocator; }
  sdk::Evictor& evictor() { return *pool_.evictor; }
  const std::map<sdk::SeqId, std::vector<sdk::TokenId>>& finished() const { return finished_; }
  const std::map<sdk::SeqId, std::string>& rejected() const { return rejected_; }
  std::size_t num_live() const { return live_.size(); }
  std::size_t num_running() const {
    return static_cast<std::size_t>(std::count_if(live_.begin(), live_.end(), [](const Seq& s) {
      return s.state == sdk::SeqState::running;
    }));
  }
  std::uint64_t num_preemptions() const { return num_preemptions_; }
  sdk::Tick now() const { return now_; }

  // The token a "model" samples: a function of the context, so equal prompts give equal outputs
  // (which exercises prefix sharing of generated tokens too).
  static sdk::TokenId next_token(const std::vector<sdk::TokenId>& tokens) {
    return static_cast<sdk::TokenId>((tokens.back() * 31u + tokens.size() * 7u) % 13u);
  }

 private:
  Seq& seq(sdk::SeqId id) {
    for (Seq& s : live_)
      if (s.id == id) return s;
    ADD_FAILURE() << "plan names unknown sequence " << id;
    return live_.front();
  }

  void check_plan(const sdk::SchedulePlan& plan) {
    EXPECT_LE(plan.scheduled.size(), budget_.max_num_seqs);
    std::size_t tokens = 0;
    std::set<sdk::SeqId> seen;
    auto once = [&](sdk::SeqId id) { EXPECT_TRUE(seen.insert(id).second) << "seq " << id << " twice"; };
    const std::size_t bs = pool_.allocator->block_size();
    for (const auto& s : plan.scheduled) {
      once(s.id);
      tokens += s.num_tokens;
      const Seq& q = seq(s.id);
      EXPECT_GT(s.num_tokens, 0u);
      EXPECT_LE(s.start + s.num_tokens, q.tokens.size());
      if (q.state == sdk::SeqState::running) {
        EXPECT_EQ(s.start, q.computed) << "seq " << s.id;
      } else {
        EXPECT_EQ(s.start % bs, 0u) << "a waiting seq starts after whole cached blocks";
      }
      EXPECT_GE(pool_.allocator->block_table(s.id).size() * bs, s.start + s.num_tokens)
          << "seq " << s.id << " scheduled without reserved slots";
    }
    EXPECT_LE(tokens, budget_.max_num_batched_tokens);
    for (sdk::SeqId id : plan.preempted) {
      once(id);
      EXPECT_TRUE(pool_.allocator->block_table(id).empty()) << "preempted seq " << id << " kept blocks";
    }
    for (const auto& r : plan.rejected) {
      once(r.id);
      EXPECT_FALSE(r.reason.empty());
      EXPECT_TRUE(pool_.allocator->block_table(r.id).empty());
    }
  }

  void apply(const sdk::SchedulePlan& plan) {
    auto& a = *pool_.allocator;
    const std::size_t bs = a.block_size();
    for (const sdk::BlockCopy& c : a.take_pending_copies())
      std::copy_n(kv_.begin() + c.src * bs, bs, kv_.begin() + c.dst * bs);
    num_evictions_ += a.take_evictions().size();
    for (sdk::SeqId id : plan.preempted) {
      Seq& s = seq(id);
      s.state = sdk::SeqState::waiting;
      s.computed = 0;
    }
    for (const auto& r : plan.rejected) {
      rejected_[r.id] = r.reason;
      erase(r.id);
    }
    std::vector<sdk::SeqId> done;
    for (const auto& sch : plan.scheduled) {
      Seq& s = seq(sch.id);
      auto table = a.block_table(s.id);
      // What attention would read: every earlier position must hold its own token.
      for (std::size_t p = 0; p < sch.start; ++p)
        ASSERT_EQ(kv_[table[p / bs] * bs + p % bs], s.tokens[p])
            << "seq " << s.id << " reads wrong KV at position " << p;
      for (std::size_t p = sch.start; p < sch.start + sch.num_tokens; ++p)
        kv_[table[p / bs] * bs + p % bs] = s.tokens[p];
      s.state = sdk::SeqState::running;
      s.computed = sch.start + sch.num_tokens;
      a.commit(s.id, std::span(s.tokens).first(s.computed), now_);
      if (s.computed == s.tokens.size()) {
        s.tokens.push_back(next_token(s.tokens));
        if (s.tokens.size() >= s.max_total || (s.stop_at > 0 && s.tokens.size() >= s.stop_at)) done.push_back(s.id);
      }
    }
    for (sdk::SeqId id : done) {
      a.release(id, now_);
      EXPECT_TRUE(finished_.emplace(id, seq(id).tokens).second) << "seq " << id << " finished twice";
      erase(id);
    }
  }

  // Block accounting, and that a block held by two sequences is a full block of equal content
  // at the same position in both (shared through the prefix cache; the simulator never forks).
  void check_pool() {
    auto& a = *pool_.allocator;
    const std::size_t bs = a.block_size();
    auto st = a.stats();
    EXPECT_EQ(st.free_blocks + st.cached_blocks + st.used_blocks, st.num_blocks);
    EXPECT_EQ(st.cached_blocks, pool_.evictor->num_candidates());
    EXPECT_EQ(a.num_available_blocks(), st.free_blocks + st.cached_blocks);
    EXPECT_EQ(num_evictions_, st.evictions);
    std::map<sdk::BlockId, std::pair<const Seq*, std::size_t>> owner;  // block -> first holder, index
    for (const Seq& s : live_) {
      auto table = a.block_table(s.id);
      std::set<sdk::BlockId> mine(table.begin(), table.end());
      EXPECT_EQ(mine.size(), table.size()) << "seq " << s.id << " holds a block twice";
      for (std::size_t i = 0; i < table.size(); ++i) {
        EXPECT_GE(table[i], 0);
        EXPECT_LT(static_cast<std::size_t>(table[i]), a.num_blocks());
        auto [it, fresh] = owner.emplace(table[i], std::make_pair(&s, i));
        if (fresh) continue;
        const Seq& other = *it->second.first;
        EXPECT_EQ(it->second.second, i) << "block " << table[i] << " shared at different positions";
        std::size_t end = (i + 1) * bs;
        ASSERT_TRUE(s.computed >= end && other.computed >= end)
            << "block " << table[i] << " shared by seqs " << s.id << " and " << other.id
            << " but not full in both";
        EXPECT_TRUE(std::equal(s.tokens.begin(), s.tokens.begin() + end, other.tokens.begin()))
            << "block " << table[i] << " shared by sequences with different prefixes";
      }
    }
    EXPECT_EQ(owner.size(), st.used_blocks);
  }

  void erase(sdk::SeqId id) {
    live_.erase(std::remove_if(live_.begin(), live_.end(), [&](const Seq& s) { return s.id == id; }),
                live_.end());
  }

  KvPool pool_;
  PluginPtr<sdk::Scheduler> scheduler_;
  sdk::StepBudget budget_;
  std::vector<sdk::TokenId> kv_;  // fake KV cache: the token stored in each slot
  std::vector<Seq> live_;         // unfinished, in arrival order
  std::map<sdk::SeqId, std::vector<sdk::TokenId>> finished_;
  std::map<sdk::SeqId, std::string> rejected_;
  std::uint64_t num_evictions_ = 0;  // reported through take_evictions()
  std::uint64_t num_preemptions_ = 0;
  sdk::Tick now_ = 0;
};

}  // namespace loom::testing
