// Tensor and expert parallelism on the CPU: one CpuModel share per rank of the parallel plugin
// (rank_share.h), each run by its own thread (RankThreads) with its own attention backend and
// its own KV heads (ShardedKvCache), the ranks meeting in the plugin's collectives. Rank 0's
// logits are the model's: gathered from every rank's vocabulary rows when the vocabulary is split.
//
// The engine's attention backend and cache view passed to forward() are not used: each rank runs
// its own backend (made by the same plugin from the same config) on its own cache.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/model/cpu_ranks_model.h"
#include "core/model/sharded_kv_cache.h"
#include "loom/parallel.h"

namespace loom {

class ShardedModel final : public CpuRanksModel {
 public:
  // `attention` holds one backend per rank.
  ShardedModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const sdk::RankLayout> layouts,
               std::vector<std::shared_ptr<sdk::AttentionBackend>> attention);
  ~ShardedModel() override;

  std::uint64_t weight_bytes() const override;
  std::string describe() const override;
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;
  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;

 private:
  void run_rank(std::uint32_t rank, const ForwardBatch& batch);
  // Rank `rank`'s logits of its vocabulary rows, gathered into rank 0's step logits.
  void gather_logits(std::uint32_t rank, std::size_t rows);

  std::vector<sdk::RankLayout> layouts_;
  const ShardedKvCache* cache_ = nullptr;                         // made by make_kv_cache, owned by the engine
  std::vector<std::vector<float>> share_logits_, padded_logits_;  // per rank
  std::vector<float> gathered_;
};

}  // namespace loom
