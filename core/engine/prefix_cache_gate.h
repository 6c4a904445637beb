// The allocator as the scheduler sees it: every call goes to the allocator plugin, except that
// sequences the engine names take no cached prefix (acquire_cached_prefix returns 0) and so
// compute every prompt position — a request that asks for the prompt's log-probabilities needs
// the logits of each one, as vLLM skips its prefix cache for such requests.
#pragma once

#include <functional>

#include "loom/kv_allocator.h"

namespace loom {

class PrefixCacheGate final : public sdk::KvAllocator {
 public:
  // Borrows `allocator`; `uncached(id)` says whether sequence `id` must compute its whole prompt.
  PrefixCacheGate(sdk::KvAllocator& allocator, std::function<bool(sdk::SeqId)> uncached)
      : a_(allocator), uncached_(std::move(uncached)) {}

  void set_evictor(sdk::Evictor& evictor) override { a_.set_evictor(evictor); }
  // Not gated: the call names no sequence, so a scheduler's estimate for a gated sequence counts
  // cached tokens it will not take (it then reserves blocks for them; never fewer than it needs).
  std::size_t num_cached_prefix_tokens(std::span<const sdk::TokenId> tokens) const override {
    return a_.num_cached_prefix_tokens(tokens);
  }
  std::size_t acquire_cached_prefix(sdk::SeqId seq, std::span<const sdk::TokenId> tokens, sdk::Tick now) override {
    return uncached_(seq) ? 0 : a_.acquire_cached_prefix(seq, tokens, now);
  }
  std::size_t blocks_needed(sdk::SeqId seq, std::size_t start, std::size_t num_tokens) const override {
    return a_.blocks_needed(seq, start, num_tokens);
  }
  bool reserve(sdk::SeqId seq, std::size_t start, std::size_t num_tokens, sdk::Tick now) override {
    return a_.reserve(seq, start, num_tokens, now);
  }
  void commit(sdk::SeqId seq, std::span<const sdk::TokenId> tokens, sdk::Tick now) override {
    a_.commit(seq, tokens, now);
  }
  void release(sdk::SeqId seq, sdk::Tick now) override { a_.release(seq, now); }
  void trim(sdk::SeqId seq, std::size_t num_tokens, sdk::Tick now) override { a_.trim(seq, num_tokens, now); }
  void fork(sdk::SeqId parent, sdk::SeqId child, sdk::Tick now) override { a_.fork(parent, child, now); }
  std::vector<sdk::BlockCopy> take_pending_copies() override { return a_.take_pending_copies(); }
  std::vector<sdk::EvictedBlock> take_evictions() override { return a_.take_evictions(); }
  std::span<const sdk::BlockId> block_table(sdk::SeqId seq) const override { return a_.block_table(seq); }
  std::size_t num_available_blocks() const override { return a_.num_available_blocks(); }
  std::size_t num_blocks() const override { return a_.num_blocks(); }
  std::size_t block_size() const override { return a_.block_size(); }
  sdk::AllocatorStats stats() const override { return a_.stats(); }

 private:
  sdk::KvAllocator& a_;
  std::function<bool(sdk::SeqId)> uncached_;
};

}  // namespace loom
