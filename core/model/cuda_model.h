// The Llama-family forward pass on one NVIDIA GPU: fp16/bf16 weights and activations, fp32
// accumulation. Linear layers run through cuBLAS with fused QKV and gate/up weights; the rest are
// Loom's own kernels (kernels/cuda); attention is the attention plugin's. Logits stay on the GPU:
// greedy and sampled rows are chosen there, and only rows that need the CPU sampler's penalties
// are copied back.
//
// Memory: the weights live in one allocation, every work buffer is sized at start-up for the
// largest step (max_num_batched_tokens tokens, max_num_seqs sampling rows), so the KV cache can
// take what gpu_memory_utilization leaves and nothing is allocated while serving.
//
// Decode steps (every sequence one token, every row sampled) replay CUDA graphs captured per
// padded batch size on first use; other steps run eagerly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/io/model_weights.h"
#include "core/model/cuda_model_factory.h"
#include "core/model/model.h"
#include "core/runtime/cublas_linear.h"
#include "core/runtime/device_memory.h"
#include "loom/kernels/cuda/dtype.h"

namespace loom {

struct CudaLayerWeights {
  const void* attn_norm = nullptr;
  const void* w_qkv = nullptr;   // [(heads + 2 kv_heads) * head_dim, hidden]
  const void* b_qkv = nullptr;   // Qwen2
  const void* wo = nullptr;      // [hidden, heads * head_dim]
  const void* bo = nullptr;
  const void* q_norm = nullptr;  // Qwen3
  const void* k_norm = nullptr;
  const void* ffn_norm = nullptr;
  const void* w_gate_up = nullptr;  // [2 * intermediate, hidden]: gate rows, then up rows
  const void* w_down = nullptr;     // [hidden, intermediate]
};

class CudaModel final : public Model {
 public:
  CudaModel(io::LoadedModel model, const CudaModelOptions& options);
  ~CudaModel() override;

  const io::ModelConfig& config() const override { return config_; }
  sdk::ModelShape shape() const override;
  sdk::Device device() const override { return {sdk::DeviceKind::cuda, options_.device_index}; }
  sdk::DType kv_dtype() const override { return options_.fp16 ? sdk::DType::f16 : sdk::DType::bf16; }
  std::uint64_t weight_bytes() const override { return weight_bytes_; }
  std::string describe() const override;
  std::uint64_t kv_cache_budget(double gpu_memory_utilization) const override;
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;

  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;
  void read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                    std::span<std::int32_t> tokens) override;

  // Number of CUDA graphs captured so far (one per padded decode batch size used).
  std::size_t num_graphs() const { return graphs_.size(); }

  double device_seconds() const override { return device_ms_ / 1e3; }
  std::string profile_report() const override;
  void reset_timing() override;

 private:
  void upload_weights(const io::ModelWeights& w);
  // Enqueues a whole step for T tokens (R sampling rows): the copy of its inputs from pinned
  // memory, the forward pass, argmax and the copy of its greedy tokens back (all in its graph).
  void enqueue_forward(int T, int R, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache);
  int graph_batch_size(int T) const;  // padded size for a decode of T tokens; 0 = run eagerly

  // A step's inputs and greedy outputs, packed for its T tokens and R rows (padded sizes for a
  // graph) so that one small copy uploads them and one brings the results back: tokens [T],
  // positions [T], logit rows [R], the bad-id flag (uploaded as -1, set by the embedding), then
  // the greedy tokens [R].
  struct StepIo {
    std::int32_t *tokens, *positions, *rows, *bad_id, *greedy;
  };
  static StepIo step_io(void* base, int T, int R);

  io::ModelConfig config_;
  CudaModelOptions options_;
  kernels::cuda::DType dtype_;
  std::uint64_t weight_bytes_ = 0;
  runtime::CudaStream stream_;
  std::unique_ptr<runtime::CublasLinear> linear_;

  // Weights: one allocation.
  runtime::DeviceBuffer weight_storage_;
  const void* embedding_ = nullptr;
  const void* final_norm_ = nullptr;
  const void* lm_head_ = nullptr;
  std::vector<CudaLayerWeights> layers_;
  runtime::DeviceBuffer cos_sin_;  // [rope_positions_, head_dim] fp32
  int rope_positions_ = 0;         // positions in the RoPE table (max_model_len, at least 1)

  // Inputs and greedy outputs of a step (StepIo), on the device and in pinned host memory.
  runtime::DeviceBuffer step_io_;
  runtime::PinnedBuffer host_step_io_;
  StepIo last_host_io_{};  // where the last forward's results arrive on the host
  runtime::DeviceBuffer activations_;  // hidden, normed, qkv, q, k, v, attn, proj, gate_up, act, selected
  runtime::DeviceBuffer logits_;       // [Rmax, vocab] fp32
  runtime::DeviceBuffer sampling_;     // sampled rows: kernels::cuda::SampleRow [Rmax], then tokens [Rmax]
  runtime::PinnedBuffer host_sampling_;
  void *hidden_ = nullptr, *normed_ = nullptr, *qkv_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr,
       *attn_ = nullptr, *proj_ = nullptr, *gate_up_ = nullptr, *act_ = nullptr, *selected_ = nullptr;
  std::uint32_t max_tokens_ = 0, max_rows_ = 0;
  int last_rows_ = 0;

  std::map<int, cudaGraphExec_t> graphs_;
  bool fused_decode_ = false;  // one-token steps use the fused GEMVs (see enqueue_forward)
  bool fused_rope_ = false;    // ... and the QKV GEMV applies RoPE (no layer has a QK-norm)

  // Timing: events around every forward pass; with profiling, around each phase too (eager only).
  void mark(const char* phase);
  void collect_timing();
  cudaEvent_t step_start_ = nullptr, step_end_ = nullptr;
  bool timing_pending_ = false;
  double device_ms_ = 0;
  bool profile_ = false;
  std::vector<cudaEvent_t> phase_events_;
  std::vector<const char*> phase_names_;
  std::size_t phase_count_ = 0;
  std::map<std::string, double> phase_ms_;
  std::uint64_t profiled_steps_ = 0;
};

}  // namespace loom
