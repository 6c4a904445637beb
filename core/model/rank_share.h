// One rank's share of a model under tensor or expert parallelism (sdk::RankLayout): which
// collectives its forward pass needs, and its weights cut down to the rows and columns it holds.
#pragma once

#include <cstdint>

#include "core/io/model_weights.h"
#include "loom/parallel.h"

namespace loom {

struct RankShare {
  sdk::RankLayout layout;
  std::uint32_t heads = 0, kv_heads = 0;  // held by this rank
  bool heads_split = false;               // O projection's output is a partial sum: all-reduce it
  bool ffn_split = false;                 // every FFN's down projection is a partial sum
  bool experts_split = false;             // an MoE layer's output is this rank's experts' part
  bool vocab_split = false;               // embedding rows and logits of [vocab_begin, vocab_end) only
};

// The share `layout` describes of a model of config `c`; throws Error for a layout the CPU model
// cannot run (uneven or out-of-range slices), which the engine's checks keep from happening.
RankShare rank_share(const io::ModelConfig& c, const sdk::RankLayout& layout);

// Replaces `w` by the weights `share` holds: query/KV heads' rows of Q/K/V and columns of O,
// FFN columns (gate/up rows, down columns) of the dense FFN, each expert and the shared expert,
// held experts only, and vocabulary rows of the embedding and lm head. The O bias stays with the
// rank holding head 0 and the shared expert, when experts alone are split, with the rank holding
// expert 0, so that the all-reduce adds each once.
void keep_share(io::ModelWeights& w, const io::ModelConfig& c, const RankShare& share);

}  // namespace loom
