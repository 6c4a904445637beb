// Drives a model runner (CPU or CUDA) the way the engine does, without the engine: a KV cache
// with shuffled block tables per sequence, the real attention plugin loaded through the
// registry, and steps made of token chunks for several sequences at once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/model/cpu_model.h"
#include "core/model/kv_cache.h"
#include "core/plugin/plugin_registry.h"
#include "loom/attention.h"

namespace loom::testing {

class ModelHarness {
 public:
  ModelHarness(io::LoadedModel model, int block_size = 16, int max_seqs = 8, int max_len = 1024);
  // Any runner; max_tokens bounds one step (the CUDA path sizes its buffers from it).
  ModelHarness(std::unique_ptr<Model> model, int block_size, int max_seqs, int max_len, int max_tokens);

  struct Chunk {
    int seq;
    std::vector<std::int32_t> tokens;  // appended to the sequence this step
  };
  // Runs one step; returns, per chunk, the logits of every row of the chunk ([rows][vocab]).
  std::vector<std::vector<std::vector<float>>> step(const std::vector<Chunk>& chunks);

  // Greedy continuations of several prompts decoded together (prefill all, then one token per
  // sequence per step), `steps` tokens each.
  std::vector<std::vector<std::int32_t>> greedy(const std::vector<std::vector<std::int32_t>>& prompts, int steps);

  Model& model() { return *model_; }
  // A sequence id no step has used, nor any id above it.
  int unused_sequence_id() const { return static_cast<int>(length_.size()) + 1000; }
  // The paged attention backend the harness loaded; steps run `backend` instead once it is set
  // (a test's wrapper around this one), nullptr going back to it.
  sdk::AttentionBackend& paged_attention() { return *attention_; }
  void use_attention(sdk::AttentionBackend* backend) { override_ = backend; }

 private:
  std::unique_ptr<Model> model_;
  int block_size_;
  int blocks_per_seq_;
  PluginRegistry registry_;
  PluginPtr<sdk::AttentionBackend> attention_;
  sdk::AttentionBackend* override_ = nullptr;
  std::unique_ptr<KvCache> cache_;
  std::map<int, int> length_;                       // tokens stored per sequence
  std::map<int, std::vector<std::int32_t>> tables_;  // block table per sequence
  std::vector<std::int32_t> free_blocks_;
};

// Greedy continuations of `prompts_a` on `a` and `prompts_b` on `b` (`steps` tokens each), the
// two runners' steps alternating: what two models in one process (a draft model beside its
// target) do. Returns {a's outputs, b's outputs}.
std::pair<std::vector<std::vector<std::int32_t>>, std::vector<std::vector<std::int32_t>>> greedy_interleaved(
    ModelHarness& a, const std::vector<std::vector<std::int32_t>>& prompts_a, ModelHarness& b,
    const std::vector<std::vector<std::int32_t>>& prompts_b, int steps);

// argmax with the lowest id on ties.
std::int32_t argmax(const std::vector<float>& logits);

// How close to a tie the first difference between two greedy continuations of `prompt` is, on the
// CPU (fp32): (logit of a's token - logit of b's) / (max logit - mean logit) at the first position
// where they differ, with a the CPU's (or reference) continuation. 0 when identical; 1 when one
// is a prefix of the other. GPU tests accept differences below a small gap (docs/numerics.md).
// With `stored_as`, the CPU that measures the gap stores its weights and activations in that
// 16-bit type (CpuModel::store_like): the gap a 16-bit run's storage alone accounts for.
double divergence_gap(const io::LoadedModel& model, const std::vector<std::int32_t>& prompt,
                      const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b,
                      std::optional<sdk::DType> stored_as = std::nullopt);

// `count` prompts for a model of `vocab` token ids: BOS (1), then ids drawn from [3, vocab), of
// lengths drawn from [1, max_len], from a fixed seed.
std::vector<std::vector<std::int32_t>> random_prompts(int count, int vocab, int max_len, std::uint32_t seed);

}  // namespace loom::testing
