// The model runner as the engine sees it, whatever the device: one forward pass per engine step,
// then, per sampling row, the token chosen where the logits are (greedy, drawn with the
// sequence's temperature / top-k / min-p / top-p and its uniform draw, or a draft verified against
// the drafter's probabilities) or, for what only the CPU sampler does (penalties, min_tokens),
// the row's logits on the host. The CPU backend is CpuModel (cpu_model.h); the CUDA backend is
// CudaModel (cuda_model.h). Both run the attention plugin for attention.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/io/model_config.h"
#include "core/model/forward_batch.h"
#include "core/model/kv_cache.h"
#include "core/model/phase_times.h"
#include "core/sampling/logprobs.h"
#include "core/sampling/sampling_params.h"
#include "core/sampling/speculative_verify.h"
#include "loom/attention.h"
#include "loom/engine_info.h"
#include "loom/parallel.h"

namespace loom {

// How the engine wants the token of one logit row.
struct OutputRow {
  enum class Kind : std::uint8_t {
    greedy,  // the lowest id among the largest logits (sampling's greedy_token)
    sample,  // sample_with_uniform(logits, *params, uniform) (core/sampling/sampler.h)
    verify,  // verify_draft_row(logits, *params, draft, draft_q, draws).token
             // (core/sampling/speculative_verify.h): the draft, or its replacement
    logits,  // copy the row to the host; the engine samples it
    score,   // no token: tokens[r] is given (a prompt's next token), for read_logprobs alone
  };
  Kind kind = Kind::greedy;
  const SamplingParams* params = nullptr;  // sample, verify: temperature > 0, top_k, top_p, min_p
  double uniform = 0.0;                    // sample: the sequence's next draw, in [0, 1)
  std::int32_t draft = 0;                  // verify: the draft token at this row's position
  std::span<const float> draft_q;          // verify: the drafter's probabilities, a vocabulary's worth
  VerifyDraws draws;                       // verify: the sequence's next two draws
  std::int32_t logprobs = -1;  // greedy, sample, verify, score: >= 0 asks read_logprobs for the top this many
};

// The most logit rows one step may ask for, on every device: a row per sequence and one per
// draft, within the step's tokens. The CUDA runner's buffers hold this many; the engine keeps
// each step within it, prompt log-probability rows included (which bounds the host's logits too).
inline std::uint32_t max_logit_rows(std::uint32_t max_num_seqs, std::uint32_t max_num_batched_tokens,
                                    std::uint32_t max_draft_tokens) {
  const std::uint32_t max_tokens = std::max(max_num_batched_tokens, max_num_seqs);
  return std::min(max_tokens, std::max<std::uint32_t>(max_num_seqs, 1) * (1 + max_draft_tokens));
}

class Model {
 public:
  virtual ~Model() = default;

  virtual const io::ModelConfig& config() const = 0;
  virtual sdk::ModelShape shape() const = 0;  // kv_bytes_per_element is the cache's element size
  virtual sdk::Device device() const = 0;
  virtual sdk::DType kv_dtype() const = 0;
  // Bytes of weights one forward pass reads (a tied lm head counted once, the embedding not).
  virtual std::uint64_t weight_bytes() const = 0;
  // Short description for logs: device, dtype, and for GPUs the memory plan.
  virtual std::string describe() const = 0;

  // Bytes the KV cache may use when the config does not fix the number of blocks. CPU: 0 (the
  // engine decides); CUDA: what gpu_memory_utilization leaves after weights and work buffers.
  virtual std::uint64_t kv_cache_budget(double gpu_memory_utilization) const = 0;
  virtual std::unique_ptr<KvCache> make_kv_cache(std::uint32_t num_blocks, std::uint32_t block_size) = 0;

  // Calls parallel.init_rank(r) for each of the runner's ranks, each on the thread that runs that
  // rank, all at once (a transport's set-up may wait for every rank); one rank: rank 0 here.
  virtual void init_ranks(sdk::Parallel& parallel) { parallel.init_rank(0); }

  // Runs one step; keeps the logits of batch.logit_rows until the next forward. Throws
  // RequestError for a token id outside the vocabulary, DeviceError when the device fails.
  virtual void forward(const ForwardBatch& batch, sdk::AttentionBackend& attention, const sdk::KvCacheView& cache) = 0;
  // Whether forward() calls batch.before_layer (otherwise the caller waits before the forward).
  virtual bool waits_layer_by_layer() const { return false; }

  // Makes the first step of `num_tokens` tokens that samples every one (a decode or verify step)
  // as fast as the ones after it. GPU: captures that padded size's CUDA graph now, by running
  // such a step once over the first blocks of `cache`, which must hold nothing yet (at start-up).
  // CPU, or a size that is not replayed: nothing.
  virtual void prepare_step(int /*num_tokens*/, sdk::AttentionBackend& /*attention*/,
                            const sdk::KvCacheView& /*cache*/) {}

  // For each logit row r of the last forward: rows[r].kind == logits copies its logits to
  // logits[r * vocab, (r + 1) * vocab); score leaves tokens[r] as it is; otherwise sets
  // tokens[r] to the token rows[r] asks for.
  virtual void read_outputs(std::span<const OutputRow> rows, std::span<float> logits,
                            std::span<std::int32_t> tokens) = 0;

  // After read_outputs: for each row r whose rows[r].logprobs >= 0, out[r] = the log-probability
  // of tokens[r] and the top rows[r].logprobs of row r's logits (token_logprobs'
  // contract), computed where the logits are; other entries are left alone.
  virtual void read_logprobs(std::span<const OutputRow> rows, std::span<const std::int32_t> tokens,
                             std::span<TokenLogprobs> out) = 0;

  // Device time spent in forward passes since the last reset (GPU: measured with events; CPU: 0),
  // and, when profiling was asked for (LOOM_PROFILE=1), a per-phase breakdown (GPU: device time;
  // CPU: host time of the forward and of read_outputs' sampling).
  virtual double device_seconds() const { return 0.0; }
  virtual std::string profile_report() const { return ""; }
  // The same breakdown as numbers: seconds per phase name (empty without profiling).
  virtual PhaseSeconds phase_seconds() const { return {}; }
  // Turns the per-phase breakdown on or off from the next step (the GPU runner runs steps
  // eagerly while it is on: phases are timed between kernels, which a graph hides).
  virtual void set_profiling(bool) {}
  virtual void reset_timing() {}
};

}  // namespace loom
