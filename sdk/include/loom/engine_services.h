// What the engine lends a plugin besides EngineInfo's facts: a model runner of its own (a draft
// model beside the target, for a drafter) and evictor plugins to order caches of its own (the
// offload connector's tiers). EngineInfo::services points here for a drafter and a KV
// connector; other kinds get null.
//
// The runner is Loom's own (the CPU or CUDA model the target runs on, the same device and data
// type) with a paged KV cache of its own, sized when the model is loaded. The plugin loads it in
// its constructor, which the engine calls after the target is on its device and before the
// target's KV pool is sized, so the draft model's weights, work buffers and KV come out of the
// memory the pool would otherwise take.
//
// Threading: engine thread only. Errors: loom::Error (a model that cannot load, a device
// failure); the plugin decides what to do (a drafter that throws decodes without drafts).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "loom/engine_info.h"
#include "loom/evictor.h"
#include "loom/export.h"
#include "loom/types.h"

namespace loom::sdk {

// One sequence's new tokens for ModelRunner::extend.
struct ModelInput {
  SeqId id = 0;
  std::span<const TokenId> tokens;  // at least one; appended after the tokens the runner holds for `id`
};

// ModelRunner::extend's token for an input its KV cache has no room for (nothing of it is kept).
inline constexpr TokenId kNoRoom = -1;

class LOOM_SDK_VISIBLE ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const ModelShape& shape() const = 0;
  // Tokens of `seq` whose KV the runner holds (0 for a sequence it does not know).
  virtual std::size_t num_tokens(SeqId seq) const = 0;
  // Keeps the KV of `seq`'s first num_tokens tokens and frees the rest (rolls back rejected
  // drafts); at or beyond what it holds, nothing changes.
  virtual void truncate(SeqId seq, std::size_t num_tokens) = 0;
  // Forgets `seq` and frees its KV.
  virtual void release(SeqId seq) = 0;
  // Runs the model over each input's tokens, after what the runner holds for that sequence, and
  // keeps their KV. next[i] is the greedy token after input i's last token (the lowest id among
  // the largest logits), or kNoRoom when the sequence would outgrow the runner's KV cache or the
  // model's context (its state is then unchanged). When `logits` is not empty it holds
  // inputs.size() x vocab_size floats and receives each input's row. Each sequence appears at
  // most once. On an error (a token outside the vocabulary, a device failure) nothing of the
  // call is kept and loom::Error is thrown.
  virtual void extend(std::span<const ModelInput> inputs, std::span<TokenId> next, std::span<float> logits) = 0;
};

class LOOM_SDK_VISIBLE EngineServices {
 public:
  virtual ~EngineServices() = default;

  // Loads the model at `path` (a Hugging Face folder or a llama2.c .bin; relative to the folder
  // of the config file) on the engine's device, in the target's data type, with a KV cache for
  // kv_tokens tokens (0: the engine's max_num_seqs sequences at the target's whole context, or
  // the model's when shorter). The model's vocabulary must be the target's. Throws loom::Error
  // saying why it cannot (a missing or malformed model, another vocabulary, not enough memory);
  // the plugin adds its key. In the engine's dry run of the config (before the target loads)
  // only the model's config is read and checked, and the runner returned cannot run.
  virtual std::unique_ptr<ModelRunner> load_model(const std::string& path, std::uint64_t kv_tokens) = 0;

  // An evictor plugin — a name, as in [evictor] plugin, or a path to its library (relative to
  // the config's folder) — with its keys' defaults, told a cache of num_blocks blocks: for a
  // plugin that keeps blocks of its own in an order a policy chooses. Its BlockIds are the
  // caller's, in [0, num_blocks). The object keeps its library loaded. Throws loom::Error
  // saying why (not found, not an evictor); the plugin adds its key.
  virtual std::shared_ptr<Evictor> make_evictor(const std::string& plugin, std::uint64_t num_blocks) = 0;
};

}  // namespace loom::sdk
