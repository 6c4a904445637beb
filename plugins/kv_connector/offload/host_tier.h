// The host tier of the offload connector: KV blocks kept in host memory by content hash, in one
// arena of fixed-size slots; when it is full the block its evictor chooses (tier_order.h) leaves,
// handed to the next tier first.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

#include "block_copier.h"
#include "tier_order.h"

namespace loom::offload {

class HostTier {
 public:
  // Called with a block that leaves the tier, before its slot is reused.
  using Spill = std::function<void(sdk::BlockHash, std::span<const char>)>;

  // `order` is told a cache of capacity_blocks blocks; `arena` holds their slots (pinned memory
  // for a GPU's copies, BlockCopier::allocate_host).
  HostTier(std::size_t block_bytes, std::size_t capacity_blocks, std::shared_ptr<sdk::Evictor> order, HostArena arena);

  bool contains(sdk::BlockHash hash) const { return order_.contains(hash); }
  // The block's bytes, now used (its evictor sees a hit); empty when absent.
  std::span<const char> find(sdk::BlockHash hash);
  // A slot for `hash` (its old one if present, now used), for the caller to fill. When the tier
  // is full the evictor's victim goes to `spill` and gives up its slot. Empty for a tier of no
  // capacity.
  std::span<char> insert(sdk::BlockHash hash, const Spill& spill);

  std::size_t size() const { return order_.size(); }
  std::size_t capacity() const { return order_.capacity(); }

 private:
  std::span<char> slot(std::size_t i) { return {arena_.get() + i * block_bytes_, block_bytes_}; }

  std::size_t block_bytes_;
  // capacity slots of block_bytes_
  HostArena arena_;
  TierOrder order_;  // a block's id is its slot
};

}  // namespace loom::offload
