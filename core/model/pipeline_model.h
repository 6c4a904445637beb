// Pipeline parallelism on the CPU: one CpuModel per rank of the parallel plugin, rank r holding
// decoder layers stages[r] (contiguous, in rank order, covering the model). A step runs the ranks
// one after another on the engine's thread: rank 0 embeds, each rank runs its layers and hands
// the residual stream ([T, hidden] fp32) to the next through the plugin's send_next/recv_prev,
// and the last rank computes the logits. The KV cache holds every layer; each rank's attention
// reads and writes only its own layers.
//
// Because the ranks share one thread, a plugin's send_next(r) must return before the matching
// recv_prev(r + 1) is called (buffer the activations, as an in-process transport does); ranks on
// separate devices and threads come with GPU pipeline parallelism.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/model/cpu_model.h"
#include "loom/parallel.h"

namespace loom {

class PipelineModel final : public Model {
 public:
  PipelineModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const LayerRange> stages);

  const io::ModelConfig& config() const override { return stages_.front()->config(); }
  sdk::ModelShape shape() const override { return stages_.front()->shape(); }
  sdk::Device device() const override { return {sdk::DeviceKind::cpu, 0}; }
  sdk::DType kv_dtype() const override { return sdk::DType::f32; }
  std::uint64_t weight_bytes() const override;
  std::string describe() const override;
  std::uint64_t kv_cache_budget(double) const override { return 0; }
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;

  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;
  void read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                    std::span<std::int32_t> tokens) override;
  void read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                     std::span<TokenLogprobs> out) override;

 private:
  sdk::Parallel& parallel_;
  std::vector<std::unique_ptr<CpuModel>> stages_;
};

}  // namespace loom
