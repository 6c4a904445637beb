// Paged attention as an attention backend runs it on a CUDA device (attention/paged, and
// attention/relay for the rest of each context): plans each step on the host
// (attention_plan.h), copies the plan into device buffers whose addresses never change (so
// decode steps can be CUDA graphs), and per layer runs paged_attention.h, which also stores the
// step's K/V.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loom/attention.h"
#include "loom/cuda_buffer.h"
#include "loom/engine_info.h"
#include "loom/kernels/cuda/attention_plan.h"

namespace loom::kernels::cuda {

class PagedAttentionRunner {
 public:
  // Sizes every buffer for the engine's largest step. Must run with the model's device current.
  // owner: the plugin, as errors and buffer names call it ("attention/paged").
  PagedAttentionRunner(const loom::sdk::EngineInfo& info, std::string owner);

  // k_first: empty, or per sequence the first key it attends (AttentionSeqMeta::k_first; only
  // for sequences on_cuda_cores()).
  void prepare(const loom::sdk::AttentionBatch& batch, const loom::sdk::KvCacheView& cache, loom::sdk::Stream stream,
               std::span<const std::int32_t> k_first = {});
  // lse: null, or [tokens, heads] floats for the rows' log-sum-exps (PagedAttentionArgs::lse).
  void forward(std::uint32_t layer, const loom::sdk::TensorView& q, const loom::sdk::TensorView& k,
               const loom::sdk::TensorView& v, const loom::sdk::KvCacheView& cache, const loom::sdk::TensorView& out,
               loom::sdk::Stream stream, float* lse = nullptr);

  // Whether a sequence with q_len tokens this step is attended by the CUDA-core kernel (which
  // honours k_first and lse) rather than the tensor-core prefill kernel.
  bool on_cuda_cores(std::uint32_t q_len) const { return !goes_to_prefill_kernel(static_cast<int>(q_len), limits_); }

 private:
  std::string owner_;
  // Capacities.
  int max_tokens_ = 0, max_seqs_ = 0, max_blocks_per_seq_ = 0, max_items_ = 0, max_slots_ = 0, rows_per_item_ = 0;
  int grid_ = 0;
  AttentionPlanLimits limits_;
  // One device allocation and its pinned mirror: counts, seqs, then the step's items and right
  // after them its block tables (seqs index the tables from the start of the allocation), so
  // that one copy uploads a decode step; prefill tiles and slots have regions of their own.
  loom::sdk::DeviceBuffer device_;
  loom::sdk::PinnedBuffer host_;
  std::size_t off_seqs_ = 0, off_items_ = 0, off_prefill_ = 0, off_slots_ = 0;
  int max_prefill_tiles_ = 0;
  int num_prefill_tiles_ = 0;                // of the prepared step
  loom::sdk::DeviceBuffer partial_out_;      // float [slots, rows_per_item, head_dim]
  loom::sdk::DeviceBuffer partial_max_sum_;  // float [slots, rows_per_item, 2]
  loom::sdk::DeviceBuffer split_counters_;   // int, one per partial slot (the first slot of a split tile's)
  // The prepared step.
  int num_heads_ = 0;
  float scale_ = 1.0f;
  std::vector<AttentionSeqMeta> seqs_;
  std::vector<std::int32_t> tables_, slots_;
};

}  // namespace loom::kernels::cuda
