// evictor/lfu: evicts the candidate whose content was referenced least often, with dynamic aging
// (LFU-DA, Arlitt et al. 2000) so that popularity from long ago does not pin a block forever.
//
// Frequency is counted per content hash, not per block: the count is 1 for the computation that
// stored the content plus 1 for every prefix-cache hit (on_hit), including hits while the block
// is in use by other sequences. A count is dropped when its content is evicted — the content is
// gone, and a later recomputation starts afresh at 1 — so with the paged allocator the table
// holds at most one entry per findable block (<= num_blocks). A caller that reports hits for
// content it never caches could grow it; past kTableSlack * num_blocks entries the counts of
// non-candidates are swept (amortized O(1): a sweep leaves at most num_blocks entries).
//
// Aging, `aging = "dynamic"` (default): a candidate's priority is K = frequency + L, where L is
// the priority of the last victim. L only grows, so content admitted now starts at L + 1 and an
// old popular block (K fixed when it became a candidate) is overtaken once L has climbed past
// its K — after about K newer evictions rather than never. Chosen over periodic halving because
// it has no period to tune, costs nothing per operation and needs no O(n) sweep of all counts.
// `aging = "none"` keeps L at 0: plain LFU, for comparison.
//
// Ties (equal K) go to the candidate that was added (or re-prioritized by a hit) longest ago:
// LRU among equals, which also makes the aged-out popular block the first to go on a tie.
//
// Cost: candidates live in a std::set ordered by (K, admission sequence) plus hash maps from
// block and hash to their entry: O(log n) for add, remove, evict and a hit on a candidate;
// O(1) expected for on_hit of a non-candidate and on_miss; num_candidates O(1).
#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "loom/evictor.h"

namespace {

using loom::sdk::BlockHash;
using loom::sdk::BlockId;
using loom::sdk::Tick;

const loom::sdk::ConfigKeySpec kKeys[] = {
    {"aging", loom::sdk::KeyType::string, "dynamic",
     "\"dynamic\": LFU-DA, priority = frequency + priority of the last victim, so old popularity "
     "decays; \"none\": plain LFU (popular blocks may stay forever)"},
};

constexpr std::size_t kTableSlack = 2;    // frequency table may reach this * num_blocks (+ kTableMin)
constexpr std::size_t kTableMin = 64;

class LfuEvictor final : public loom::sdk::Evictor {
 public:
  LfuEvictor(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig& config)
      : table_limit_(kTableSlack * static_cast<std::size_t>(info.num_blocks) + kTableMin) {
    const std::string& aging = config.string("aging");
    if (aging == "dynamic") dynamic_aging_ = true;
    else if (aging == "none") dynamic_aging_ = false;
    else throw config.invalid("aging", "must be \"dynamic\" or \"none\", got \"" + aging + "\"");
    where_.reserve(info.num_blocks);
    freq_.reserve(table_limit_);
  }

  void add_candidate(BlockId block, BlockHash hash, Tick) override {
    auto [f, inserted] = freq_.try_emplace(hash, 1);  // first admission counts 1
    Key key{f->second + age_, next_seq_++, block};
    where_[block] = Entry{order_.insert(key).first, hash};
    by_hash_.try_emplace(hash, block);  // a colliding second block is simply not re-keyed by hits
    if (inserted) bound_table(hash);
  }

  void remove_candidate(BlockId block, Tick) override {
    auto it = where_.find(block);
    forget_hash(it->second.hash, block);
    order_.erase(it->second.pos);
    where_.erase(it);
  }

  BlockId evict(Tick) override {
    Key victim = *order_.begin();
    order_.erase(order_.begin());
    auto it = where_.find(victim.block);
    BlockHash hash = it->second.hash;
    where_.erase(it);
    forget_hash(hash, victim.block);
    freq_.erase(hash);  // the content is gone; a recomputation counts from 1 again
    if (dynamic_aging_) age_ = victim.priority;
    return victim.block;
  }

  void on_hit(BlockHash hash, Tick) override {
    // Absent means in use since it was computed: 1 for that computation, 1 for this hit.
    auto [f, inserted] = freq_.try_emplace(hash, 1);
    std::uint64_t count = ++f->second;
    if (inserted) bound_table(hash);
    // With the paged allocator a hit candidate is removed right after; other callers may leave
    // it a candidate, so its priority must reflect the hit now.
    if (auto c = by_hash_.find(hash); c != by_hash_.end()) {
      Entry& e = where_.at(c->second);
      order_.erase(e.pos);
      e.pos = order_.insert(Key{count + age_, next_seq_++, c->second}).first;
    }
  }

  void on_miss(BlockHash, Tick) override {}  // new content is counted when it is admitted
  std::size_t num_candidates() const override { return where_.size(); }

 private:
  struct Key {
    std::uint64_t priority;  // K = frequency + L at admission
    std::uint64_t seq;       // admission order: the tie-break, and unique
    BlockId block;
    bool operator<(const Key& o) const {
      return priority != o.priority ? priority < o.priority : seq < o.seq;
    }
  };
  struct Entry {
    std::set<Key>::iterator pos;
    BlockHash hash;
  };

  void forget_hash(BlockHash hash, BlockId block) {
    if (auto c = by_hash_.find(hash); c != by_hash_.end() && c->second == block) by_hash_.erase(c);
  }

  // Guard against callers that report hits for content they never cache (see file comment).
  // Keeps candidates' counts and `keep`, the one just counted.
  void bound_table(BlockHash keep) {
    if (freq_.size() <= table_limit_) return;
    std::erase_if(freq_, [&](const auto& kv) { return kv.first != keep && !by_hash_.contains(kv.first); });
  }

  bool dynamic_aging_ = true;
  std::size_t table_limit_;
  std::uint64_t age_ = 0;  // L: priority of the last victim (stays 0 without aging)
  std::uint64_t next_seq_ = 0;
  std::set<Key> order_;  // lowest priority first; equal priority: added longest ago first
  std::unordered_map<BlockId, Entry> where_;
  std::unordered_map<BlockHash, BlockId> by_hash_;      // candidate holding each hash
  std::unordered_map<BlockHash, std::uint64_t> freq_;   // references per content hash
};

}  // namespace

LOOM_PLUGIN(evictor, "lfu", "1.0.0",
            "Least frequently used with dynamic aging (LFU-DA): evicts the least-referenced content",
            LfuEvictor, kKeys)
