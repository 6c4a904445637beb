// The Llama-family forward pass on one NVIDIA GPU: fp16/bf16 weights and activations, fp32
// accumulation. Linear layers run through cuBLAS with fused QKV and gate/up weights; the rest are
// Loom's own kernels (kernels/cuda); attention is the attention plugin's. Logits stay on the GPU:
// greedy and sampled rows are chosen there, and only rows that need the CPU sampler's penalties
// are copied back.
//
// The runner wires together one object per job: the weights of the layers it holds
// (cuda_weights.h), the RoPE table (cuda_rope_table.h), the work buffers sized for the largest
// step (cuda_work_buffers.h), the CUDA graphs of decode steps keyed by padded size and the
// attention backend's launch variant (cuda_graph_cache.h) and the step timer
// (cuda_step_timer.h). Each runner owns its stream, cuBLAS handle and buffers, so several run
// in one process (a draft model beside its target, two models on one GPU).
//
// Memory: the weights live in one allocation, every work buffer is sized at start-up for the
// largest step (max_num_batched_tokens tokens, max_num_seqs sampling rows), so the KV cache can
// take what gpu_memory_utilization leaves and nothing is allocated while serving.
#pragma once

#include <cstdint>
#include <memory>

#include <cuda_runtime_api.h>

#include "core/io/model_weights.h"
#include "core/model/cuda_graph_cache.h"
#include "core/model/cuda_logprobs.h"
#include "core/model/cuda_model_factory.h"
#include "core/model/cuda_rope_table.h"
#include "core/model/cuda_step_timer.h"
#include "core/model/cuda_weights.h"
#include "core/model/cuda_work_buffers.h"
#include "core/model/model.h"
#include "core/runtime/cublas_linear.h"
#include "core/runtime/device_memory.h"
#include "loom/kernels/cuda/dtype.h"

namespace loom {

class CudaModel final : public Model {
 public:
  CudaModel(io::LoadedModel model, const CudaModelOptions& options);
  ~CudaModel() override;

  const io::ModelConfig& config() const override { return config_; }
  sdk::ModelShape shape() const override;
  sdk::Device device() const override { return {sdk::DeviceKind::cuda, options_.device_index}; }
  sdk::DType kv_dtype() const override { return dtype_; }
  std::uint64_t weight_bytes() const override { return weights_->bytes_per_forward(); }
  std::string describe() const override;
  std::uint64_t kv_cache_budget(double gpu_memory_utilization) const override;
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;

  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;
  bool waits_layer_by_layer() const override { return true; }
  void prepare_step(int num_tokens, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;
  void read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                    std::span<std::int32_t> tokens) override;
  void read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                     std::span<TokenLogprobs> out) override;

  // Number of CUDA graphs captured so far (one per padded decode batch size and attention variant).
  std::size_t num_graphs() const { return graphs_.size(); }

  double device_seconds() const override { return timer_->device_seconds(); }
  std::string profile_report() const override { return timer_->report(); }
  PhaseSeconds phase_seconds() const override { return timer_->phase_seconds(); }
  void set_profiling(bool on) override { timer_->set_profiling(on); }
  void reset_timing() override { timer_->reset(); }

 private:
  // What one enqueued step works on: its token and row counts (padded for a graph), its inputs
  // and outputs on both sides, and the attention plugin with the cache.
  struct Step {
    int T, R;
    StepIo io, host;
    bool one_token;  // the fused one-token GEMVs run (see attention_block)
    sdk::AttentionBackend& attention;
    const sdk::KvCacheView& cache;
    // Called before each layer of an eager multi-token step; a graphed or one-token step's
    // callbacks all run before it (its kernels start early, and a graph cannot hold them).
    const std::function<void(std::uint32_t layer)>* before_layer;
  };
  int graph_batch_size(int T) const;  // padded size for a decode of T tokens; 0 = run eagerly
  void write_inputs(const ForwardBatch& batch, int T, int R);
  // A whole step: the copy of its inputs from pinned memory, embedding, layers, final norm and lm
  // head, argmax and the copy of its greedy tokens back (all inside its graph).
  void enqueue_step(const Step& step);
  void embed(const Step& step);
  // Layer l's attention half, its output added to the residual stream (fused one-token path) or
  // left in proj for the next norm; a tensor-parallel runner's all-reduce goes after o projection.
  void attention_block(const Step& step, std::size_t l);
  // Layer l's FFN half, likewise; a tensor-parallel all-reduce goes after the down projection.
  void ffn_block(const Step& step, std::size_t l);
  void logits_and_greedy(const Step& step);
  // Enqueues the verification of `count` rows of kind verify, gathered in host_verify_rows.
  void verify_drafts(std::span<const OutputRow> rows, int count);
  sdk::TensorView view(const Step& step, void* data, std::int64_t heads) const;
  void mark(const char* phase) { timer_->mark(phase, stream_.get()); }

  io::ModelConfig config_;
  CudaModelOptions options_;
  kernels::cuda::DType dtype_;
  runtime::CudaStream stream_;
  std::unique_ptr<runtime::CublasLinear> linear_;
  std::unique_ptr<CudaWeights> weights_;
  std::unique_ptr<CudaRopeTable> rope_;
  std::unique_ptr<CudaWorkBuffers> buffers_;
  CudaGraphCache graphs_;
  std::unique_ptr<CudaStepTimer> timer_;
  bool profile_decode_only_ = profiling_decode_steps_only();  // LOOM_PROFILE=decode: only decode steps timed
  bool fused_decode_ = false;  // one-token steps use the fused GEMVs (see attention_block)
  bool fused_rope_ = false;    // ... and the QKV GEMV applies RoPE (no layer has a QK-norm)
  CudaLogprobs logprobs_;
  StepIo last_host_io_{};      // where the last forward's results arrive on the host
  int last_rows_ = 0;
};

}  // namespace loom
