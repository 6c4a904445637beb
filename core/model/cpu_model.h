// The Llama-family forward pass on the CPU (fp32): embedding, decoder layers (attention through
// the attention plugin, dense or mixture-of-experts FFN), final norm and lm head.
//
// One call runs one engine step: the tokens of every scheduled sequence laid out one after the
// other — prefill chunks and decodes mixed — and returns logits only for the rows that sample.
// Every kernel is batch-invariant, so a sequence's logits do not depend on what else is in the
// batch (docs/design/batch-invariant-kernels.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/io/model_weights.h"
#include "core/model/forward_batch.h"
#include "core/model/layer_range.h"
#include "core/model/model.h"
#include "core/model/rank_share.h"
#include "loom/attention.h"
#include "loom/engine_info.h"
#include "loom/parallel.h"

namespace loom {

class CpuModel final : public Model {
 public:
  // The whole model, or (a pipeline stage) only the decoder layers `layers`: the others'
  // weights are dropped, and the stage runs its layers between embed() or a received hidden
  // state and lm_head() or a sent one (pipeline_model.h).
  explicit CpuModel(io::LoadedModel model, std::optional<LayerRange> layers = std::nullopt);
  // Rank layout.rank's share of every layer (tensor or expert parallelism, rank_share.h): the
  // forward pass all-reduces its partial sums through `parallel` (after the embedding, the O and
  // the down projections), each rank on its own thread (sharded_model.h); lm_head() gives the
  // logits of the rank's vocabulary rows.
  CpuModel(io::LoadedModel model, const sdk::RankLayout& layout, sdk::Parallel& parallel);

  const io::ModelConfig& config() const override { return model_.config; }
  sdk::ModelShape shape() const override;
  sdk::Device device() const override { return sdk::Device{sdk::DeviceKind::cpu, 0}; }
  sdk::DType kv_dtype() const override { return sdk::DType::f32; }
  // Bytes of weights one forward pass reads (fp32; a tied lm head counted once).
  std::uint64_t weight_bytes() const override { return weight_bytes_; }
  std::string describe() const override;
  std::uint64_t kv_cache_budget(double) const override { return 0; }
  std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) override;

  std::string profile_report() const override { return phase_table(clock_.seconds(), clock_.steps(), "CPU"); }
  PhaseSeconds phase_seconds() const override { return clock_.seconds(); }
  void reset_timing() override { clock_.reset(); }
  void set_profiling(bool on) override { clock_.set_enabled(on); }

  // From now on, rounds the weights (once) and the activations between kernels to `dtype`
  // (bf16 or f16) as the CUDA runner stores them, keeping fp32 accumulation, an fp32 residual
  // stream and fp32 logits: the CPU's model of a 16-bit GPU run's numerics, so that tests can tell
  // the error 16-bit storage causes from any error of the GPU's own (docs/numerics.md).
  void store_like(sdk::DType dtype);

  // Model interface: logits stay in a host buffer until read_outputs.
  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) override;
  bool waits_layer_by_layer() const override { return true; }
  void read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                    std::span<std::int32_t> tokens) override;
  void read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                     std::span<TokenLogprobs> out) override;

  // Runs the batch; writes logits [logit_rows.size(), vocab] into `logits`. Throws
  // RequestError for a token id outside the vocabulary (naming it), before computing anything.
  void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache,
               std::span<float> logits);

  // The forward's parts, for a pipeline stage; attention.prepare() must have seen the batch.
  // The residual stream of the step's T tokens, [T, hidden] fp32, sized for T by embed() or
  // by residual(T) before a received state is written into it.
  std::span<float> residual(int T);
  void embed(const ForwardBatch& batch);  // throws RequestError for an id outside the vocabulary
  void run_layers(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache);
  void lm_head(const ForwardBatch& batch, std::span<float> logits);
  // The step's logits of its sampling rows, for read_outputs (after lm_head into them).
  std::span<float> step_logits(std::size_t rows);
  LayerRange layers() const { return layers_; }
  // The attention layout of a step of this model's (or share's) heads, for attention.prepare().
  sdk::AttentionBatch attention_batch(std::span<const sdk::AttentionSeq> seqs, std::uint32_t num_tokens) const;

 private:
  void store(float* x, std::size_t n) const;  // as store_like's type rounds it, if set
  void all_reduce(float* x, std::size_t n);    // sums a share's partial result over the ranks
  void attention_block(std::size_t layer, int T, const float* cos, const float* sin, sdk::AttentionBackend& attention,
                       const sdk::KvCacheView& cache);
  void ffn_block(std::size_t layer, int T);
  void moe_ffn(const io::LayerWeights& layer, int T, const float* x, float* out);
  void swiglu(const io::Tensor& w_gate, const io::Tensor& w_up, const io::Tensor& w_down, int n, const float* x,
              float* out);

  io::LoadedModel model_;
  LayerRange layers_;
  std::uint64_t weight_bytes_ = 0;
  std::uint32_t heads_ = 0, kv_heads_ = 0;  // query and KV heads held (all but for a share)
  std::optional<RankShare> share_;
  sdk::Parallel* parallel_ = nullptr;  // a share's collectives
  std::vector<float> step_logits_;
  std::vector<double> inv_freq_;
  double rope_scale_ = 1.0;  // YaRN's attention factor on cos and sin
  // Per-step work buffers, grown as needed and reused.
  std::vector<float> hidden_, normed_, q_, k_, v_, attn_, proj_, gate_, up_, cos_, sin_;
  std::vector<float> router_logits_, expert_in_, expert_out_, routed_, route_weights_;
  std::vector<std::int32_t> route_ids_;
  PhaseClock clock_{profiling_requested()};  // LOOM_PROFILE=1: host time per phase
  bool profile_decode_only_ = profiling_decode_steps_only();  // LOOM_PROFILE=decode: only decode steps timed
  std::optional<sdk::DType> stored_as_;       // store_like's type
};

}  // namespace loom
