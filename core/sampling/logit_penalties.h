// The logit processors that run before token selection: vLLM's repetition, presence and
// frequency penalties, and the min_tokens rule that keeps EOS and stop tokens from ending a
// sequence too early. Each edits only the logits of the tokens it names, so its cost is
// O(prompt + output) and never O(vocabulary).
#pragma once

#include <cstdint>
#include <span>

namespace loom {

// Every token id that occurs in `prompt_tokens` or `output_tokens` has its logit divided by
// `penalty` when positive and multiplied by it otherwise (so penalty > 1 always makes a seen token
// less likely), once per distinct token however often it occurs. penalty == 1 is a no-op.
// Throws loom::RequestError if an id lies outside [0, logits.size()).
void apply_repetition_penalty(std::span<float> logits, float penalty,
                              std::span<const std::int32_t> prompt_tokens,
                              std::span<const std::int32_t> output_tokens);

// Every token occurring c > 0 times in `output_tokens` (the prompt does not count) has
// presence + frequency * c subtracted from its logit. Both zero is a no-op.
// Throws loom::RequestError if an id lies outside [0, logits.size()).
void apply_presence_frequency_penalties(std::span<float> logits, float presence, float frequency,
                                        std::span<const std::int32_t> output_tokens);

// Sets the logits of `token_ids` to -infinity; ids outside the vocabulary are skipped (they
// cannot be sampled anyway). Used to hold back EOS and stop tokens before min_tokens.
void suppress_tokens(std::span<float> logits, std::span<const std::int32_t> token_ids);

}  // namespace loom
