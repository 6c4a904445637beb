// An independent float64 forward pass of the Llama family, written plainly for tests: no
// kernels, no batching, no KV cache — every position recomputed from the weights. The model
// code is checked against it; it shares nothing with the engine but the weight structs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/io/model_weights.h"

namespace loom::testing {

// Logits [tokens.size(), vocab] of a causal forward over `tokens` (positions 0, 1, ...).
std::vector<std::vector<double>> reference_logits(const io::LoadedModel& model, std::span<const std::int32_t> tokens);

// Greedy continuation of `prompt` by `steps` tokens (argmax, lowest id on ties).
std::vector<std::int32_t> reference_greedy(const io::LoadedModel& model, std::vector<std::int32_t> prompt, int steps);

}  // namespace loom::testing
