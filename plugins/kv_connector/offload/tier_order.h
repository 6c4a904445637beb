// The order in which a tier's blocks leave it, kept by an evictor plugin (lru, lfu, arc or one of
// the user's, lent by the engine): every block in the tier is a candidate under an id of its own
// in [0, capacity) (the host tier's slot), a use takes it out and puts it back with a hit (so
// recency and frequency policies see it), and the block that leaves when the tier is full is the
// evictor's choice. Misses are not reported: a waiting sequence looks its blocks up every step.
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

#include "loom/evictor.h"
#include "loom/types.h"

namespace loom::offload {

class TierOrder {
 public:
  TierOrder(std::shared_ptr<sdk::Evictor> evictor, std::size_t capacity);

  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return id_of_.size(); }
  bool contains(sdk::BlockHash hash) const { return id_of_.contains(hash); }
  // The block's id; precondition: contains(hash).
  std::size_t id(sdk::BlockHash hash) const { return id_of_.at(hash); }

  // A use of a block in the tier.
  void touch(sdk::BlockHash hash);
  // Adds a block; preconditions: !contains(hash), size() < capacity(). Returns its id.
  std::size_t add(sdk::BlockHash hash);
  // The evictor's victim, removed (its id is the next add()'s); precondition: size() > 0.
  struct Victim {
    sdk::BlockHash hash;
    std::size_t id;
  };
  Victim evict();
  // Drops a block that is no longer stored (a corrupt file), if present.
  void remove(sdk::BlockHash hash);

 private:
  std::shared_ptr<sdk::Evictor> evictor_;
  std::size_t capacity_;
  sdk::Tick tick_ = 0;  // the tier's own clock: one tick per call
  std::unordered_map<sdk::BlockHash, std::size_t> id_of_;
  std::vector<sdk::BlockHash> hash_of_;  // by id
  std::vector<std::size_t> free_ids_;
};

}  // namespace loom::offload
