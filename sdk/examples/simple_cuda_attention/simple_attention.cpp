// attention/simple: an out-of-tree GPU attention backend, built against the installed SDK only.
//
// It is the smallest backend the CUDA engine runs: prepare() lays the step out in a pinned
// buffer and uploads it with one copy; forward() stores the step's K/V into the paged cache and
// runs one warp per (token, query head) over that token's visible keys (simple_attention_kernels.cu).
// It is written to be read, not to be fast: attention/paged plans split-K work and runs prefill
// on tensor cores. From Loom's kernels library (Loom::kernels) it asks which GPU it is on, to
// refuse bf16 below compute capability 8.0.
//
// CUDA graphs: the buffers are allocated once, for the largest step, and a graph captured for a
// padded decode batch replays the same launches; the kernels read the step's real token count
// from the device, so padding rows are skipped.
#include <algorithm>
#include <cstring>
#include <string>

#include "loom/attention.h"
#include "loom/cuda_buffer.h"
#include "loom/cuda_check.h"
#include "loom/kernels/cuda_devices.h"
#include "simple_attention_kernels.h"

namespace {

using namespace loom::sdk;

class SimpleAttention final : public AttentionBackend {
 public:
  SimpleAttention(const EngineInfo& info, const PluginConfig&)
      : max_tokens_(std::max(info.max_num_batched_tokens, info.max_num_seqs)),
        max_table_entries_(info.max_num_seqs *
                           ((std::max<std::uint32_t>(info.model.max_position, 1) + info.block_size - 1) /
                            info.block_size)),
        bytes_((1 + 2 * static_cast<std::size_t>(max_tokens_) + max_table_entries_) * sizeof(std::int32_t)),
        host_(bytes_, "attention/simple's step layout"),
        device_(bytes_, "attention/simple's step layout") {}

  bool supports(const Device& device, DType kv_dtype) const override {
    if (device.kind != DeviceKind::cuda || (kv_dtype != DType::f16 && kv_dtype != DType::bf16)) return false;
    if (kv_dtype == DType::f16) return true;
    for (const loom::kernels::CudaDevice& gpu : loom::kernels::cuda_devices())
      if (gpu.index == device.index) return gpu.compute_major >= 8;  // bf16 arithmetic from Ampere on
    return false;
  }

  void prepare(const AttentionBatch& batch, const KvCacheView& cache, Stream stream) override {
    if (batch.num_tokens > max_tokens_)
      throw loom::Error("attention/simple: a step of " + std::to_string(batch.num_tokens) +
                        " tokens; sized for " + std::to_string(max_tokens_));
    auto* words = host_.as<std::int32_t>();
    std::int32_t* positions = words + 1;
    std::int32_t* table_starts = positions + max_tokens_;
    std::int32_t* tables = table_starts + max_tokens_;
    std::uint32_t table_used = 0;
    for (const AttentionSeq& seq : batch.seqs) {
      if (table_used + seq.block_table.size() > max_table_entries_)
        throw loom::Error("attention/simple: the step's block tables exceed the buffer sized at start-up");
      std::copy(seq.block_table.begin(), seq.block_table.end(), tables + table_used);
      for (std::uint32_t i = 0; i < seq.q_len; ++i) {
        positions[seq.q_start + i] = static_cast<std::int32_t>(seq.ctx_len - seq.q_len + i);
        table_starts[seq.q_start + i] = static_cast<std::int32_t>(table_used);
      }
      table_used += static_cast<std::uint32_t>(seq.block_table.size());
    }
    words[0] = static_cast<std::int32_t>(batch.num_tokens);
    shape_.num_heads = static_cast<int>(batch.num_heads);
    shape_.num_kv_heads = static_cast<int>(batch.num_kv_heads);
    shape_.head_dim = static_cast<int>(batch.head_dim);
    shape_.block_size = static_cast<int>(cache.block_size);
    shape_.scale = batch.scale;
    shape_.bf16 = cache.dtype == DType::bf16;
    // One copy of everything up to the last table entry used.
    const std::size_t used = (1 + 2 * static_cast<std::size_t>(max_tokens_) + table_used) * sizeof(std::int32_t);
    LOOM_CUDA_CHECK(cudaMemcpyAsync(device_.data(), host_.data(), used, cudaMemcpyHostToDevice,
                                    static_cast<cudaStream_t>(stream)));
    // The next prepare() rewrites the pinned buffer: wait until this copy has read it.
    LOOM_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
  }

  void forward(std::uint32_t layer, const TensorView& q, const TensorView& k, const TensorView& v,
               const KvCacheView& cache, const TensorView& out, Stream stream) override {
    const auto s = static_cast<cudaStream_t>(stream);
    auto* words = device_.as<std::int32_t>();
    simple_attention::StepLayout layout;
    layout.num_tokens = words;
    layout.positions = words + 1;
    layout.table_starts = words + 1 + max_tokens_;
    layout.tables = words + 1 + 2 * max_tokens_;
    simple_attention::Shape shape = shape_;
    shape.rows = static_cast<int>(q.shape[0]);
    const KvCacheView::Layer& kv = cache.layers[layer];
    LOOM_CUDA_CHECK(simple_attention::store_kv(layout, shape, k.data, v.data, kv.k, kv.v, s));
    LOOM_CUDA_CHECK(simple_attention::attend(layout, shape, q.data, kv.k, kv.v, out.data, s));
  }

 private:
  std::uint32_t max_tokens_;
  std::uint32_t max_table_entries_;
  std::size_t bytes_;
  PinnedBuffer host_;
  DeviceBuffer device_;
  simple_attention::Shape shape_;
};

}  // namespace

LOOM_PLUGIN(attention, "simple", "1.0.0", "Example GPU backend: one warp per token and head (sdk/examples)",
            SimpleAttention, kNoKeys)
