#include "host_tier.h"

namespace loom::offload {

HostTier::HostTier(std::size_t block_bytes, std::size_t capacity_blocks, std::shared_ptr<sdk::Evictor> order,
                   HostArena arena)
    : block_bytes_(block_bytes), arena_(std::move(arena)), order_(std::move(order), capacity_blocks) {}

std::span<const char> HostTier::find(sdk::BlockHash hash) {
  if (!order_.contains(hash)) return {};
  order_.touch(hash);
  return slot(order_.id(hash));
}

std::span<char> HostTier::insert(sdk::BlockHash hash, const Spill& spill) {
  if (order_.capacity() == 0) return {};
  if (order_.contains(hash)) {
    order_.touch(hash);
    return slot(order_.id(hash));
  }
  if (order_.size() == order_.capacity()) {
    const TierOrder::Victim victim = order_.evict();
    if (spill) spill(victim.hash, slot(victim.id));  // read before the new block takes the slot
  }
  return slot(order_.add(hash));
}

}  // namespace loom::offload
