// evictor/lru: evicts the candidate that became unused longest ago.
//
// A block's "use" ends when its last sequence releases it, so recency is the order in which
// blocks became candidates; a prefix hit takes a block out, and its next release puts it back
// as the most recent. A doubly linked list in that order plus an index from block to list
// node gives O(1) for every operation.
#include <list>
#include <unordered_map>

#include "loom/evictor.h"

namespace {

using loom::sdk::BlockHash;
using loom::sdk::BlockId;
using loom::sdk::Tick;

class LruEvictor final : public loom::sdk::Evictor {
 public:
  LruEvictor(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig&) {
    where_.reserve(info.num_blocks);
  }

  void add_candidate(BlockId block, BlockHash, Tick) override {
    order_.push_back(block);
    where_[block] = std::prev(order_.end());
  }

  void remove_candidate(BlockId block, Tick) override {
    auto it = where_.find(block);
    order_.erase(it->second);
    where_.erase(it);
  }

  BlockId evict(Tick) override {
    BlockId victim = order_.front();
    order_.pop_front();
    where_.erase(victim);
    return victim;
  }

  void on_hit(BlockHash, Tick) override {}
  void on_miss(BlockHash, Tick) override {}
  std::size_t num_candidates() const override { return order_.size(); }

 private:
  std::list<BlockId> order_;  // least recently released first
  std::unordered_map<BlockId, std::list<BlockId>::iterator> where_;
};

}  // namespace

LOOM_PLUGIN(evictor, "lru", "1.0.0", "Least recently used: evicts the block unused for the longest time",
            LruEvictor, loom::sdk::kNoKeys)
