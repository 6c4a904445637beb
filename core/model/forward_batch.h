// One engine step as the model runs it: the tokens of every scheduled sequence laid out one
// after the other (prefill chunks and decodes mixed) and the rows whose logits are wanted.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "loom/attention.h"
#include "loom/error.h"

namespace loom {

struct ForwardBatch {
  std::span<const std::int32_t> tokens;      // [T]
  std::span<const std::int32_t> positions;   // [T], position of each token in its sequence
  std::span<const sdk::AttentionSeq> seqs;   // layout of the sequences in the batch
  std::span<const std::int32_t> logit_rows;  // rows of the batch whose logits are wanted
  // When set, and the model waits_layer_by_layer(): called with layers 0, 1, … in order, each
  // before that layer's first kernel, so that the work it enqueues on the model's stream (a wait
  // for the layer's KV to load) comes before the layer reads the cache.
  std::function<void(std::uint32_t layer)> before_layer;
};

// A step of decodes alone: every sequence adds one token (what LOOM_PROFILE=decode times).
inline bool every_sequence_adds_one_token(const ForwardBatch& batch) {
  for (const sdk::AttentionSeq& s : batch.seqs)
    if (s.q_len != 1) return false;
  return true;
}

// Throws RequestError naming the first token id outside [0, vocab).
inline void throw_if_outside_vocabulary(std::span<const std::int32_t> tokens, std::int32_t vocab) {
  for (std::int32_t id : tokens)
    if (id < 0 || id >= vocab)
      throw RequestError("token id " + std::to_string(id) + " is outside the model's vocabulary [0, " +
                         std::to_string(vocab) + ")");
}

}  // namespace loom
