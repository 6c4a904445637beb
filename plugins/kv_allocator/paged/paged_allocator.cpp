// kv_allocator/paged: a pool of fixed-size blocks with reference counts, copy-on-write forks and
// a prefix cache keyed by chained block hashes (the design of vLLM's block manager).
//
// Every block is in exactly one of three states, and the counts always add up to num_blocks:
//   free    ref 0, no findable content, on free_;
//   cached  ref 0, findable by hash, an evictor candidate;
//   used    ref > 0 (it may or may not be findable).
// A block is "findable" when hash_to_block_ maps its hash to it (Block::registered).
//
// Duplicate content: when a sequence fills a block whose hash is already findable through another
// block (two sequences computed the same prefix at the same time), the block registered FIRST
// stays findable and the new one stays private: it is used normally and goes back to the free
// list when released. So the map never holds two blocks for one hash and a block is never put
// on the free list while findable — nothing is lost or freed twice.
//
// Copy-on-write: reserve(seq, start, n) is told which slots the sequence writes. Every block of
// that range with ref > 1 (shared by fork) is replaced by a fresh one for this sequence, and when
// the shared block holds slots before `start` (tokens it keeps), a BlockCopy{shared, fresh} is
// queued.
#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/block_hash.h"
#include "loom/error.h"
#include "loom/kv_allocator.h"

namespace {

using loom::sdk::AllocatorStats;
using loom::sdk::BlockCopy;
using loom::sdk::BlockHash;
using loom::sdk::BlockId;
using loom::sdk::EvictedBlock;
using loom::sdk::SeqId;
using loom::sdk::Tick;
using loom::sdk::TokenId;

class PagedAllocator final : public loom::sdk::KvAllocator {
 public:
  PagedAllocator(const loom::sdk::EngineInfo& info, const loom::sdk::PluginConfig&)
      : block_size_(info.block_size),
        num_blocks_(static_cast<std::size_t>(info.num_blocks)),
        prefix_caching_(info.prefix_caching) {
    if (info.num_blocks == 0)
      throw loom::ConfigError("[kv] num_blocks: the paged allocator needs at least one KV block, got 0");
    if (info.block_size == 0)
      throw loom::ConfigError("[kv] block_size: must be at least 1 token, got 0");
    if (info.num_blocks > static_cast<std::uint64_t>(std::numeric_limits<BlockId>::max()))
      throw loom::ConfigError("[kv] num_blocks: " + std::to_string(info.num_blocks) +
                              " exceeds the largest block id " +
                              std::to_string(std::numeric_limits<BlockId>::max()));
    blocks_.resize(num_blocks_);
    free_.reserve(num_blocks_);
    // Pushed in reverse so that pop_back() hands out block 0 first: easy to read in tests.
    for (std::size_t i = num_blocks_; i > 0; --i) free_.push_back(static_cast<BlockId>(i - 1));
  }

  void set_evictor(loom::sdk::Evictor& evictor) override { evictor_ = &evictor; }

  std::size_t num_cached_prefix_tokens(std::span<const TokenId> tokens) const override {
    if (!prefix_caching_) return 0;
    BlockHash prev = loom::sdk::kChainSeed;
    std::size_t hits = 0;
    for (std::size_t i = 0; i < max_prefix_blocks(tokens.size()); ++i) {
      prev = loom::sdk::chain_hash(prev, block_tokens(tokens, i));
      if (!hash_to_block_.contains(prev)) break;
      ++hits;
    }
    return hits * block_size_;
  }

  std::size_t acquire_cached_prefix(SeqId seq, std::span<const TokenId> tokens, Tick now) override {
    if (auto it = seqs_.find(seq); it != seqs_.end() && !it->second.table.empty())
      throw loom::Error("paged allocator: acquire_cached_prefix for sequence " + std::to_string(seq) +
                        " which already has a block table");
    if (!prefix_caching_) return 0;
    BlockHash prev = loom::sdk::kChainSeed;
    SeqBlocks hit;
    for (std::size_t i = 0; i < max_prefix_blocks(tokens.size()); ++i) {
      prev = loom::sdk::chain_hash(prev, block_tokens(tokens, i));
      ++lookup_blocks_;
      auto found = hash_to_block_.find(prev);
      if (found == hash_to_block_.end()) {
        evictor_->on_miss(prev, now);
        break;
      }
      ++hit_blocks_;
      evictor_->on_hit(prev, now);
      BlockId b = found->second;
      if (blocks_[b].ref == 0) {  // a cached candidate comes back into use
        evictor_->remove_candidate(b, now);
        --num_cached_;
      }
      ++blocks_[b].ref;
      hit.table.push_back(b);
      hit.hashes.push_back(prev);
    }
    if (hit.table.empty()) return 0;
    hit.num_committed = hit.table.size() * block_size_;
    std::size_t cached_tokens = hit.num_committed;
    seqs_[seq] = std::move(hit);
    return cached_tokens;
  }

  std::size_t blocks_needed(SeqId seq, std::size_t start, std::size_t num_tokens) const override {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) return ceil_blocks(start + num_tokens);
    return new_blocks(it->second, start + num_tokens) + shared_blocks_written(it->second, start, num_tokens);
  }

  bool reserve(SeqId seq, std::size_t start, std::size_t num_tokens, Tick now) override {
    // Count first, take afterwards: a failed reserve must leave everything as it was.
    if (blocks_needed(seq, start, num_tokens) > num_available_blocks()) return false;
    SeqBlocks& s = seqs_[seq];
    copy_on_write(s, start, num_tokens, now);
    for (std::size_t n = new_blocks(s, start + num_tokens); n > 0; --n) s.table.push_back(take_block(now));
    return true;
  }

  void commit(SeqId seq, std::span<const TokenId> tokens, Tick) override {
    auto it = seqs_.find(seq);
    std::size_t slots = it == seqs_.end() ? 0 : it->second.table.size() * block_size_;
    if (tokens.size() > slots)
      throw loom::Error("paged allocator: commit of " + std::to_string(tokens.size()) +
                        " tokens for sequence " + std::to_string(seq) + " which has only " +
                        std::to_string(slots) + " reserved slots");
    if (it == seqs_.end()) return;  // nothing reserved and nothing committed
    SeqBlocks& s = it->second;
    s.num_committed = std::max(s.num_committed, tokens.size());
    if (!prefix_caching_) return;
    for (std::size_t i = s.hashes.size(); i < tokens.size() / block_size_; ++i) {
      BlockHash prev = s.hashes.empty() ? loom::sdk::kChainSeed : s.hashes.back();
      BlockHash h = loom::sdk::chain_hash(prev, block_tokens(tokens, i));
      s.hashes.push_back(h);
      BlockId b = s.table[i];
      // First copy wins (see the file comment); a duplicate stays private to its sequences.
      if (!blocks_[b].registered && hash_to_block_.emplace(h, b).second) {
        blocks_[b].registered = true;
        blocks_[b].hash = h;
      }
    }
  }

  void release(SeqId seq, Tick now) override {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) return;
    // Tail first: with a recency evictor the end of a prompt becomes the older candidate and is
    // evicted before the head, which more requests share.
    const std::vector<BlockId>& table = it->second.table;
    for (auto b = table.rbegin(); b != table.rend(); ++b) drop_ref(*b, now);
    seqs_.erase(it);
  }

  void trim(SeqId seq, std::size_t num_tokens, Tick now) override {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) return;
    SeqBlocks& s = it->second;
    if (num_tokens < s.num_committed)
      throw loom::Error("paged allocator: trim of sequence " + std::to_string(seq) + " to " +
                        std::to_string(num_tokens) + " tokens, below its " +
                        std::to_string(s.num_committed) + " committed ones");
    for (std::size_t keep = ceil_blocks(num_tokens); s.table.size() > keep; s.table.pop_back())
      drop_ref(s.table.back(), now);
  }

  void fork(SeqId parent, SeqId child, Tick) override {
    auto it = seqs_.find(parent);
    if (it == seqs_.end()) return;
    SeqBlocks copy = it->second;  // copy before seqs_[child] may rehash the map
    for (BlockId b : copy.table) ++blocks_[b].ref;
    seqs_[child] = std::move(copy);
  }

  std::vector<BlockCopy> take_pending_copies() override { return std::exchange(pending_copies_, {}); }
  std::vector<EvictedBlock> take_evictions() override { return std::exchange(evicted_, {}); }

  std::span<const BlockId> block_table(SeqId seq) const override {
    auto it = seqs_.find(seq);
    if (it == seqs_.end()) return {};
    return it->second.table;
  }

  std::size_t num_available_blocks() const override { return free_.size() + num_cached_; }
  std::size_t num_blocks() const override { return num_blocks_; }
  std::size_t block_size() const override { return block_size_; }

  AllocatorStats stats() const override {
    AllocatorStats st;
    st.num_blocks = num_blocks_;
    st.free_blocks = free_.size();
    st.cached_blocks = num_cached_;
    st.used_blocks = num_blocks_ - free_.size() - num_cached_;
    st.lookup_blocks = lookup_blocks_;
    st.hit_blocks = hit_blocks_;
    st.evictions = evictions_;
    st.copies = copies_;
    return st;
  }

 private:
  struct Block {
    std::uint32_t ref = 0;
    bool registered = false;  // hash_to_block_[hash] == this block
    BlockHash hash = 0;       // meaningful only while registered
  };

  struct SeqBlocks {
    std::vector<BlockId> table;
    std::vector<BlockHash> hashes;  // chained hash of each leading full committed block
    std::size_t num_committed = 0;  // tokens whose KV is stored (trim() never goes below)
  };

  std::size_t ceil_blocks(std::size_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }

  // Full blocks a lookup may return: the last token always stays to be computed.
  std::size_t max_prefix_blocks(std::size_t num_tokens) const {
    return num_tokens == 0 ? 0 : (num_tokens - 1) / block_size_;
  }

  std::span<const TokenId> block_tokens(std::span<const TokenId> tokens, std::size_t i) const {
    return tokens.subspan(i * block_size_, block_size_);
  }

  std::size_t new_blocks(const SeqBlocks& s, std::size_t num_tokens) const {
    std::size_t want = ceil_blocks(num_tokens);
    return want > s.table.size() ? want - s.table.size() : 0;
  }

  // Table indices of the existing blocks that slots [start, start + num_tokens) fall in.
  std::pair<std::size_t, std::size_t> written_blocks(const SeqBlocks& s, std::size_t start,
                                                     std::size_t num_tokens) const {
    if (num_tokens == 0) return {0, 0};
    return {start / block_size_, std::min(s.table.size(), ceil_blocks(start + num_tokens))};
  }

  std::size_t shared_blocks_written(const SeqBlocks& s, std::size_t start, std::size_t num_tokens) const {
    std::size_t shared = 0;
    for (auto [i, end] = written_blocks(s, start, num_tokens); i < end; ++i) shared += blocks_[s.table[i]].ref > 1;
    return shared;
  }

  void copy_on_write(SeqBlocks& s, std::size_t start, std::size_t num_tokens, Tick now) {
    for (auto [i, end] = written_blocks(s, start, num_tokens); i < end; ++i) {
      const BlockId shared = s.table[i];
      if (blocks_[shared].ref <= 1) continue;
      const BlockId fresh = take_block(now);
      --blocks_[shared].ref;  // stays >= 1: another sequence still holds it
      s.table[i] = fresh;
      // A shared block past the sequence's hashed blocks is never findable through this table
      // (a findable block is full and never written), so no hash has to be dropped here.
      if (start > i * block_size_) {  // it holds slots before the writes: tokens this sequence keeps
        pending_copies_.push_back(BlockCopy{shared, fresh});
        ++copies_;
      }
    }
  }

  // A block with ref 1 for the caller: from the free list, else the evictor's victim.
  BlockId take_block(Tick now) {
    BlockId b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else {
      b = evictor_->evict(now);
      Block& victim = blocks_[b];
      hash_to_block_.erase(victim.hash);
      evicted_.push_back(EvictedBlock{b, victim.hash});
      victim.registered = false;
      --num_cached_;
      ++evictions_;
    }
    blocks_[b].ref = 1;
    return b;
  }

  void drop_ref(BlockId b, Tick now) {
    Block& block = blocks_[b];
    if (--block.ref > 0) return;
    if (block.registered) {
      evictor_->add_candidate(b, block.hash, now);
      ++num_cached_;
    } else {
      free_.push_back(b);
    }
  }

  std::size_t block_size_;
  std::size_t num_blocks_;
  bool prefix_caching_;
  loom::sdk::Evictor* evictor_ = nullptr;

  std::vector<Block> blocks_;
  std::vector<BlockId> free_;
  std::size_t num_cached_ = 0;
  std::unordered_map<BlockHash, BlockId> hash_to_block_;
  std::unordered_map<SeqId, SeqBlocks> seqs_;

  std::vector<BlockCopy> pending_copies_;
  std::vector<EvictedBlock> evicted_;
  std::uint64_t lookup_blocks_ = 0, hit_blocks_ = 0, evictions_ = 0, copies_ = 0;
};

}  // namespace

LOOM_PLUGIN(kv_allocator, "paged", "1.0.0",
            "Paged KV blocks with reference counts, copy-on-write forks and a hash-chained prefix cache",
            PagedAllocator, loom::sdk::kNoKeys)
