// The host tier of the offload connector: KV blocks kept in host memory by content hash, in one
// arena of fixed-size slots; when it is full the least recently used block leaves, handed to the
// next tier first.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "loom/types.h"

namespace loom::offload {

class HostTier {
 public:
  // Called with a block that leaves the tier, before its slot is reused.
  using Spill = std::function<void(sdk::BlockHash, std::span<const char>)>;

  HostTier(std::size_t block_bytes, std::size_t capacity_blocks);

  bool contains(sdk::BlockHash hash) const { return index_.contains(hash); }
  // The block's bytes, now the most recently used; empty when absent.
  std::span<const char> find(sdk::BlockHash hash);
  // A slot for `hash` (its old one if present), most recently used, for the caller to fill. When
  // the tier is full the least recently used block goes to `spill` and gives up its slot. Empty
  // for a tier of no capacity.
  std::span<char> insert(sdk::BlockHash hash, const Spill& spill);

  std::size_t size() const { return index_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::size_t slot;
    std::list<sdk::BlockHash>::iterator recency;
  };
  std::span<char> slot(std::size_t i) { return {arena_.get() + i * block_bytes_, block_bytes_}; }

  std::size_t block_bytes_, capacity_;
  // capacity_ slots of block_bytes_, left uninitialised: the memory is taken as slots are filled.
  std::unique_ptr<char[]> arena_;
  std::vector<std::size_t> free_slots_;
  std::list<sdk::BlockHash> recency_;  // most recently used first
  std::unordered_map<sdk::BlockHash, Entry> index_;
};

}  // namespace loom::offload
