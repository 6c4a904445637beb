// One engine step as the model runs it: the tokens of every scheduled sequence laid out one
// after the other (prefill chunks and decodes mixed) and the rows whose logits are wanted.
#pragma once

#include <cstdint>
#include <span>

#include "loom/attention.h"

namespace loom {

struct ForwardBatch {
  std::span<const std::int32_t> tokens;      // [T]
  std::span<const std::int32_t> positions;   // [T], position of each token in its sequence
  std::span<const sdk::AttentionSeq> seqs;   // layout of the sequences in the batch
  std::span<const std::int32_t> logit_rows;  // rows of the batch whose logits are wanted
};

}  // namespace loom
