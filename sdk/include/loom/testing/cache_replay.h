// Testing an evictor without the engine: a prefix cache of a fixed number of KV blocks, replayed
// over a trace of requests, each a prompt's chain of full-block hashes (loom/block_hash.h). For
// each request, blocks are looked up in order; a cached one is a hit (taken back from the
// candidates if it was one), the first miss and everything after it are computed into blocks
// taken from the free list or, when it is empty, from evict(); when the request ends, its blocks
// become candidates. The evictor sees the calls the paged allocator makes, in the same order, so
// a policy's hit rate on a trace is measured in microseconds, with no model and no GPU.
//
//   MyEvictor evictor(loom::sdk::EngineInfo{}, config);
//   loom::sdk::testing::CacheReplay cache(evictor, 64);           // 64 blocks
//   for (const auto& prompt : trace) cache.run(prompt);           // std::vector<BlockHash>
//   cache.hits(), cache.lookups(), cache.evictions()
//
// A request longer than the pool is cut to the pool's size. Header-only; the SDK alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "loom/evictor.h"

namespace loom::sdk::testing {

class CacheReplay {
 public:
  CacheReplay(Evictor& evictor, std::size_t num_blocks) : evictor_(evictor) {
    for (std::size_t b = num_blocks; b > 0; --b) free_.push_back(static_cast<BlockId>(b - 1));
    content_.resize(num_blocks);
    candidate_.resize(num_blocks, false);
  }

  // One request whose prompt has these full-block hashes, start to end; advances the clock.
  void run(std::span<const BlockHash> prompt) {
    const Tick now = ++now_;
    std::vector<BlockId> held;
    bool hitting = true;
    for (std::size_t i = 0; i < prompt.size() && held.size() < content_.size(); ++i) {
      const BlockHash hash = prompt[i];
      ++lookups_;
      auto cached = hitting ? where_.find(hash) : where_.end();
      if (cached != where_.end()) {
        ++hits_;
        evictor_.on_hit(hash, now);
        const BlockId block = cached->second;
        if (candidate_[block]) {
          evictor_.remove_candidate(block, now);
          candidate_[block] = false;
        }
        held.push_back(block);
        continue;
      }
      hitting = false;  // after a miss the chain differs: the rest is computed
      evictor_.on_miss(hash, now);
      const BlockId block = take_block(now);
      where_[hash] = block;
      content_[block] = {hash, true};
      held.push_back(block);
    }
    for (BlockId block : held) {
      evictor_.add_candidate(block, content_[block].hash, now);
      candidate_[block] = true;
    }
  }

  std::uint64_t hits() const { return hits_; }
  std::uint64_t lookups() const { return lookups_; }
  std::uint64_t evictions() const { return evictions_; }
  double hit_rate() const { return lookups_ ? static_cast<double>(hits_) / static_cast<double>(lookups_) : 0.0; }

 private:
  struct Content {
    BlockHash hash = 0;
    bool valid = false;
  };

  BlockId take_block(Tick now) {
    if (!free_.empty()) {
      const BlockId block = free_.back();
      free_.pop_back();
      return block;
    }
    if (evictor_.num_candidates() == 0) throw std::logic_error("CacheReplay: every block is in use");
    const BlockId victim = evictor_.evict(now);
    if (victim < 0 || static_cast<std::size_t>(victim) >= content_.size() || !candidate_[victim])
      throw std::logic_error("CacheReplay: evict() returned block " + std::to_string(victim) +
                             ", which is not a candidate");
    candidate_[victim] = false;
    // The content may have been computed again into another block since (a chain that missed
    // earlier): only this block's own entry goes.
    if (auto it = where_.find(content_[victim].hash); it != where_.end() && it->second == victim) where_.erase(it);
    content_[victim] = {};
    ++evictions_;
    return victim;
  }

  Evictor& evictor_;
  std::vector<BlockId> free_;
  std::vector<Content> content_;
  std::vector<bool> candidate_;
  std::unordered_map<BlockHash, BlockId> where_;
  Tick now_ = 0;
  std::uint64_t hits_ = 0, lookups_ = 0, evictions_ = 0;
};

}  // namespace loom::sdk::testing
