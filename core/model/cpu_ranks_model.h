// What the CPU runners of several ranks share (PipelineModel, ShardedModel): a CpuModel per rank,
// each run by its own thread (RankThreads) with its own attention backend, meeting in the parallel
// plugin's collectives; the step's logits are read from one rank's CpuModel.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/model/cpu_model.h"
#include "core/model/rank_threads.h"
#include "loom/parallel.h"

namespace loom {

class CpuRanksModel : public Model {
 public:
  const io::ModelConfig& config() const override { return ranks_.front()->config(); }
  sdk::ModelShape shape() const override { return ranks_.front()->shape(); }
  sdk::Device device() const override { return {sdk::DeviceKind::cpu, 0}; }
  sdk::DType kv_dtype() const override { return sdk::DType::f32; }
  std::uint64_t kv_cache_budget(double) const override { return 0; }

  void init_ranks(sdk::Parallel& parallel) override {
    run_ranks([&](std::uint32_t rank) { parallel.init_rank(rank); });
  }
  void read_outputs(std::span<const OutputRow> rows, std::span<float> logits, std::span<std::int32_t> tokens) override {
    ranks_.at(output_rank_)->read_outputs(rows, logits, tokens);
  }
  void read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                     std::span<TokenLogprobs> out) override {
    ranks_.at(output_rank_)->read_logprobs(rows, tokens, out);
  }

 protected:
  // `attention` holds one backend per rank; the derived runner fills ranks_ in rank order.
  CpuRanksModel(sdk::Parallel& parallel, std::vector<std::shared_ptr<sdk::AttentionBackend>> attention,
                std::size_t output_rank)
      : parallel_(parallel),
        attention_(std::move(attention)),
        output_rank_(output_rank),
        threads_(static_cast<std::uint32_t>(attention_.size())) {}

  // work(rank) on every rank at once; a rank that throws wakes the others waiting for it in a
  // collective, and its exception comes out once all have returned.
  void run_ranks(const std::function<void(std::uint32_t)>& work) {
    threads_.run(
        work, [this] { parallel_.abort_collectives(); }, [this] { parallel_.resume_collectives(); });
  }

  sdk::Parallel& parallel_;
  std::vector<std::unique_ptr<CpuModel>> ranks_;
  std::vector<std::shared_ptr<sdk::AttentionBackend>> attention_;

 private:
  std::size_t output_rank_;
  RankThreads threads_;
};

}  // namespace loom
