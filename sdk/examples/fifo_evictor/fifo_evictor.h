// evictor/fifo's policy, in a header so that its test (fifo_evictor_test.cpp) can run it without
// loading the plugin; fifo_evictor.cpp declares the plugin.
//
// FIFO evicts the candidate whose content entered the cache first, however often it has been
// reused since. That makes it a useful baseline next to LRU (which forgets a block's age each
// time it is reused) in `loom ab` experiments.
//
// O(log n) per operation: candidates are kept ordered by the admission number of their content.
#pragma once

#include <cstdio>
#include <set>
#include <unordered_map>
#include <utility>

#include <loom/evictor.h>

namespace fifo {

using loom::sdk::BlockHash;
using loom::sdk::BlockId;
using loom::sdk::Tick;

class FifoEvictor final : public loom::sdk::Evictor {
 public:
  FifoEvictor(const loom::sdk::EngineInfo&, const loom::sdk::PluginConfig& config)
      : log_evictions_(config.boolean("log_evictions")) {}

  void add_candidate(BlockId block, BlockHash hash, Tick) override {
    // Content seen before keeps its original admission number: that is what makes this FIFO.
    auto [it, fresh] = admitted_.try_emplace(hash, next_admission_);
    if (fresh) ++next_admission_;
    queue_.insert({it->second, block});
    admission_of_block_[block] = it->second;
  }

  void remove_candidate(BlockId block, Tick) override {
    auto it = admission_of_block_.find(block);
    queue_.erase({it->second, block});
    admission_of_block_.erase(it);
  }

  BlockId evict(Tick now) override {
    auto oldest = queue_.begin();
    BlockId victim = oldest->second;
    queue_.erase(oldest);
    admission_of_block_.erase(victim);
    if (log_evictions_) std::fprintf(stderr, "fifo: step %llu evicts block %d\n", (unsigned long long)now, victim);
    return victim;
  }

  // Content that is gone from the cache starts afresh when it comes back.
  void on_miss(BlockHash hash, Tick) override { admitted_.erase(hash); }
  void on_hit(BlockHash, Tick) override {}

  std::size_t num_candidates() const override { return queue_.size(); }

 private:
  bool log_evictions_;
  std::uint64_t next_admission_ = 0;
  std::unordered_map<BlockHash, std::uint64_t> admitted_;      // content -> admission number
  std::set<std::pair<std::uint64_t, BlockId>> queue_;           // candidates, oldest content first
  std::unordered_map<BlockId, std::uint64_t> admission_of_block_;
};

}  // namespace fifo
