// evictor/arc: Adaptive Replacement Cache (Megiddo & Modha, FAST 2003) over evictor candidates.
//
// ARC balances recency against frequency with two resident lists and two ghost lists:
//   T1  candidates whose content was referenced once since it was stored (LRU first);
//   T2  candidates whose content was referenced at least twice (LRU first);
//   B1  hashes of content recently evicted from T1, B2 those evicted from T2 (ghosts, no data);
//   p   the target size of T1, learned from ghost hits.
// Adapted to this interface, where only candidates (reference count 0) can be evicted:
//   - T1/T2 order candidates only. Content referenced again while it is in use (on_hit, or
//     remove_candidate after a prefix hit) is marked "frequent" and enters T2 when it becomes a
//     candidate again; an on_hit on a current candidate moves it to the MRU end of T2 at once.
//   - on_miss(hash) looks in the ghosts: a B1 hit means T1 was too small, p += max(1, |B2|/|B1|)
//     (at most c); a B2 hit means T2 was too small, p -= max(1, |B1|/|B2|) (at least 0); the
//     sizes are taken before the ghost is removed and the divisions are integer, as in most
//     implementations. Either way the content is marked frequent and enters T2 when admitted.
//     The paged allocator reports only the first miss of a prefix chain, so content found in a
//     ghost list when add_candidate admits it counts as a ghost hit in the same way.
//   - evict() is ARC's REPLACE: the LRU of T1 if |T1| > p or T2 is empty, else the LRU of T2;
//     the victim's hash goes to the MRU end of B1 or B2. ARC's extra "x in B2 and |T1| == p"
//     case is left out: evict() does not know which request it serves.
// Ghost sizing, c = EngineInfo::num_blocks: |T1| + |B1| <= c and |T1| + |T2| + |B1| + |B2| <= 2c,
// enforced by dropping the LRU end of B1 (first rule) or B2, then B1 (second rule) whenever a
// list grows. The frequent marks belong to content in use (<= c entries with the paged
// allocator); past kMarkSlack * c + kMarkMin marks, from callers that report hits for content
// they never cache, all marks are dropped (amortized O(1), the worst effect is a block entering
// T1 instead of T2).
//
// Cost: O(1) expected per operation — std::list for order, unordered maps from block and hash
// to list position; trimming ghosts pops at most what was pushed (amortized O(1)).
#include <algorithm>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <unordered_set>

#include "loom/evictor.h"

namespace {

using loom::sdk::BlockHash;
using loom::sdk::BlockId;
using loom::sdk::Tick;

constexpr std::size_t kMarkSlack = 2;
constexpr std::size_t kMarkMin = 64;

class ArcEvictor final : public loom::sdk::Evictor {
 public:
  ArcEvictor(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig&)
      : c_(static_cast<std::size_t>(info.num_blocks)) {
    where_.reserve(c_);
    ghost_where_.reserve(2 * c_);
  }

  void add_candidate(BlockId block, BlockHash hash, Tick) override {
    bool frequent = frequent_.erase(hash) > 0;
    if (auto g = ghost_where_.find(hash); g != ghost_where_.end()) {
      ghost_hit(g);
      frequent = true;
    }
    List which = frequent ? List::t2 : List::t1;
    list(which).push_back(Resident{block, hash});
    where_[block] = Pos{which, std::prev(list(which).end())};
    by_hash_.try_emplace(hash, block);  // a colliding second block is not moved by hits
    trim_ghosts();
  }

  void remove_candidate(BlockId block, Tick) override {
    auto it = where_.find(block);
    BlockHash hash = it->second.pos->hash;
    frequent_.insert(hash);  // referenced again: it comes back into T2
    bound_marks();
    forget_hash(hash, block);
    list(it->second.list).erase(it->second.pos);
    where_.erase(it);
  }

  BlockId evict(Tick) override {
    bool from_t1 = !t1_.empty() && (t1_.size() > p_ || t2_.empty());
    List which = from_t1 ? List::t1 : List::t2;
    Resident victim = list(which).front();
    list(which).pop_front();
    where_.erase(victim.block);
    forget_hash(victim.hash, victim.block);
    frequent_.erase(victim.hash);
    if (!ghost_where_.contains(victim.hash)) {  // a colliding twin may already be a ghost
      std::list<BlockHash>& ghosts = from_t1 ? b1_ : b2_;
      ghosts.push_back(victim.hash);
      ghost_where_[victim.hash] = GhostPos{from_t1, std::prev(ghosts.end())};
      trim_ghosts();
    }
    return victim.block;
  }

  void on_hit(BlockHash hash, Tick) override {
    auto c = by_hash_.find(hash);
    if (c == by_hash_.end()) {  // in use: remember for when it is released
      frequent_.insert(hash);
      bound_marks();
      return;
    }
    Pos& pos = where_.at(c->second);
    t2_.splice(t2_.end(), list(pos.list), pos.pos);  // iterators stay valid across splice
    pos.list = List::t2;
  }

  void on_miss(BlockHash hash, Tick) override {
    auto g = ghost_where_.find(hash);
    if (g == ghost_where_.end()) return;  // new content: T1 when admitted
    ghost_hit(g);
    frequent_.insert(hash);
    bound_marks();
  }

  std::size_t num_candidates() const override { return where_.size(); }

 private:
  enum class List { t1, t2 };
  struct Resident {
    BlockId block;
    BlockHash hash;
  };
  struct Pos {
    List list;
    std::list<Resident>::iterator pos;
  };
  struct GhostPos {
    bool in_b1;
    std::list<BlockHash>::iterator pos;
  };

  std::list<Resident>& list(List which) { return which == List::t1 ? t1_ : t2_; }

  // Adapts p to a hit on ghost `g` and forgets the ghost (the content is coming back).
  void ghost_hit(std::unordered_map<BlockHash, GhostPos>::iterator g) {
    if (g->second.in_b1) {
      p_ = std::min(c_, p_ + std::max<std::size_t>(1, b2_.size() / b1_.size()));
      b1_.erase(g->second.pos);
    } else {
      std::size_t delta = std::max<std::size_t>(1, b1_.size() / b2_.size());
      p_ = p_ > delta ? p_ - delta : 0;
      b2_.erase(g->second.pos);
    }
    ghost_where_.erase(g);
  }

  void drop_oldest_ghost(std::list<BlockHash>& ghosts) {
    ghost_where_.erase(ghosts.front());
    ghosts.pop_front();
  }

  void trim_ghosts() {
    while (!b1_.empty() && t1_.size() + b1_.size() > c_) drop_oldest_ghost(b1_);
    while (t1_.size() + t2_.size() + b1_.size() + b2_.size() > 2 * c_ && !(b1_.empty() && b2_.empty()))
      drop_oldest_ghost(b2_.empty() ? b1_ : b2_);
  }

  void forget_hash(BlockHash hash, BlockId block) {
    if (auto c = by_hash_.find(hash); c != by_hash_.end() && c->second == block) by_hash_.erase(c);
  }

  void bound_marks() {
    if (frequent_.size() > kMarkSlack * c_ + kMarkMin) frequent_.clear();
  }

  std::size_t c_;      // cache size in blocks: bounds p and the ghost lists
  std::size_t p_ = 0;  // target |T1|
  std::list<Resident> t1_, t2_;
  std::list<BlockHash> b1_, b2_;
  std::unordered_map<BlockId, Pos> where_;
  std::unordered_map<BlockHash, BlockId> by_hash_;  // candidate holding each hash
  std::unordered_map<BlockHash, GhostPos> ghost_where_;
  std::unordered_set<BlockHash> frequent_;  // content referenced again while not a candidate
};

}  // namespace

LOOM_PLUGIN(evictor, "arc", "1.0.0",
            "Adaptive Replacement Cache: balances recency (T1) and frequency (T2), learning from "
            "ghosts of evicted content",
            ArcEvictor, loom::sdk::kNoKeys)
