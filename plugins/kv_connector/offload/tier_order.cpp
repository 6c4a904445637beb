#include "tier_order.h"

#include <string>

#include "loom/error.h"

namespace loom::offload {

TierOrder::TierOrder(std::shared_ptr<sdk::Evictor> evictor, std::size_t capacity)
    : evictor_(std::move(evictor)), capacity_(capacity), hash_of_(capacity) {
  free_ids_.reserve(capacity_);
  for (std::size_t i = capacity_; i > 0; --i) free_ids_.push_back(i - 1);
}

void TierOrder::touch(sdk::BlockHash hash) {
  const auto block = static_cast<sdk::BlockId>(id_of_.at(hash));
  ++tick_;
  evictor_->remove_candidate(block, tick_);
  evictor_->on_hit(hash, tick_);
  evictor_->add_candidate(block, hash, tick_);
}

std::size_t TierOrder::add(sdk::BlockHash hash) {
  const std::size_t id = free_ids_.back();
  free_ids_.pop_back();
  id_of_.emplace(hash, id);
  hash_of_[id] = hash;
  evictor_->add_candidate(static_cast<sdk::BlockId>(id), hash, ++tick_);
  return id;
}

TierOrder::Victim TierOrder::evict() {
  const sdk::BlockId victim = evictor_->evict(++tick_);
  if (victim < 0 || static_cast<std::size_t>(victim) >= capacity_ || !id_of_.contains(hash_of_[victim]) ||
      id_of_.at(hash_of_[victim]) != static_cast<std::size_t>(victim))
    throw loom::Error("the tier's evictor chose block " + std::to_string(victim) + ", which it was not given");
  const sdk::BlockHash hash = hash_of_[victim];
  id_of_.erase(hash);
  free_ids_.push_back(static_cast<std::size_t>(victim));
  return {hash, static_cast<std::size_t>(victim)};
}

void TierOrder::remove(sdk::BlockHash hash) {
  const auto it = id_of_.find(hash);
  if (it == id_of_.end()) return;
  evictor_->remove_candidate(static_cast<sdk::BlockId>(it->second), ++tick_);
  free_ids_.push_back(it->second);
  id_of_.erase(it);
}

}  // namespace loom::offload
