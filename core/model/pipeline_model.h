// Pipeline parallelism on the CPU: one CpuModel per rank of the parallel plugin, rank r holding
// decoder layers stages[r] (contiguous, in rank order, covering the model), each rank a thread
// with its own attention backend. A step is cut into micro-batches of whole sequences (as many as
// there are stages, when there are that many sequences): rank 0 embeds each in turn and every rank
// runs its layers on micro-batch m while the next rank runs micro-batch m - 1, handing the
// residual stream ([T, hidden] fp32) on through the plugin's send_next/recv_prev; the last rank
// computes each micro-batch's logits. The KV cache holds every layer; each rank's attention reads
// and writes only its own layers, so the ranks never touch the same memory.
//
// The CPU kernels give a sequence the same results in any batch, so micro-batches change no
// token. send_next may return before the matching recv_prev is called (the plugin buffers, as an
// in-process transport does); recv_prev waits for it.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "core/model/cpu_ranks_model.h"
#include "loom/parallel.h"

namespace loom {

class PipelineModel final : public CpuRanksModel {
 public:
  // `attention` holds one backend per stage.
  PipelineModel(io::LoadedModel model, sdk::Parallel& parallel, std::span<const LayerRange> stages,
                std::vector<std::shared_ptr<sdk::AttentionBackend>> attention);
  ~PipelineModel() override;

  std::uint64_t weight_bytes() const override;
  std::string describe() const override;
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;
  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;

 private:
  // Whole sequences [first_seq, end_seq) of the step, their tokens rebased to start at 0.
  struct MicroBatch {
    std::vector<sdk::AttentionSeq> seqs;
    std::span<const std::int32_t> tokens, positions;
    std::vector<std::int32_t> logit_rows;  // rebased
    std::vector<std::size_t> step_rows;    // each logit row's index among the step's
    ForwardBatch batch() const { return {tokens, positions, seqs, logit_rows, {}}; }
  };
  std::vector<MicroBatch> micro_batches(const ForwardBatch& batch) const;
  void run_stage(std::uint32_t rank, std::span<const MicroBatch> micro, const sdk::KvCacheView& cache);

  std::vector<float> micro_logits_;  // the last stage's, per micro-batch
};

}  // namespace loom
