#include "host_tier.h"

namespace loom::offload {

HostTier::HostTier(std::size_t block_bytes, std::size_t capacity_blocks)
    : block_bytes_(block_bytes), capacity_(capacity_blocks), arena_(new char[block_bytes * capacity_blocks]) {
  free_slots_.reserve(capacity_);
  for (std::size_t i = capacity_; i > 0; --i) free_slots_.push_back(i - 1);
}

std::span<const char> HostTier::find(sdk::BlockHash hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return {};
  recency_.splice(recency_.begin(), recency_, it->second.recency);
  return slot(it->second.slot);
}

std::span<char> HostTier::insert(sdk::BlockHash hash, const Spill& spill) {
  if (capacity_ == 0) return {};
  if (auto it = index_.find(hash); it != index_.end()) {
    recency_.splice(recency_.begin(), recency_, it->second.recency);
    return slot(it->second.slot);
  }
  if (free_slots_.empty()) {
    const sdk::BlockHash victim = recency_.back();
    const Entry entry = index_.at(victim);
    if (spill) spill(victim, slot(entry.slot));
    recency_.pop_back();
    index_.erase(victim);
    free_slots_.push_back(entry.slot);
  }
  const std::size_t s = free_slots_.back();
  free_slots_.pop_back();
  recency_.push_front(hash);
  index_.emplace(hash, Entry{s, recency_.begin()});
  return slot(s);
}

}  // namespace loom::offload
