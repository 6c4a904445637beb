// The KV cache of ranks that split the heads (tensor parallelism): one CpuKvCache per rank, each
// holding that rank's KV heads for the same block ids. The engine sees rank 0's view, which it
// only hands back to ShardedModel::forward (a KV connector, which copies blocks through the view,
// is refused with such a model); copy_block copies the block on every rank.
#pragma once

#include <memory>
#include <vector>

#include "core/model/kv_cache.h"

namespace loom {

class ShardedKvCache final : public KvCache {
 public:
  explicit ShardedKvCache(std::vector<std::unique_ptr<KvCache>> ranks) : ranks_(std::move(ranks)) {}

  const sdk::KvCacheView& view() const override { return ranks_.front()->view(); }
  const sdk::KvCacheView& rank_view(std::size_t rank) const { return ranks_.at(rank)->view(); }
  void copy_block(sdk::BlockId src, sdk::BlockId dst) override {
    for (const auto& rank : ranks_) rank->copy_block(src, dst);
  }
  std::uint64_t bytes_per_block() const override {
    std::uint64_t bytes = 0;
    for (const auto& rank : ranks_) bytes += rank->bytes_per_block();
    return bytes;
  }

 private:
  std::vector<std::unique_ptr<KvCache>> ranks_;
};

}  // namespace loom
