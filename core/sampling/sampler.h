// Chooses the next token of one sequence from its logits, on the CPU.
//
// The pipeline follows vLLM (v1): penalties, min_tokens suppression, then either greedy argmax
// or temperature -> top-k / min-p / top-p filtering -> one draw. Randomness comes only from the
// sequence's own SequenceRng, and the draw maps a uniform number onto tokens in a fixed order
// (descending probability, ties by lower id), so a sequence's tokens depend on nothing but its
// logits, its parameters and its seed.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/sampling/sampling_params.h"
#include "core/sampling/sequence_rng.h"

namespace loom {

// Chooses the next token. Preconditions: validate(params) passed; logits.size() == vocabulary.
// `logits` is scratch and is left modified. Steps, in order:
//   1. repetition_penalty over every distinct token of prompt_tokens and output_tokens;
//   2. presence and frequency penalties over output_tokens;
//   3. while output_tokens.size() < min_tokens: eos_ids (unless ignore_eos) and stop_token_ids
//      are set to -inf;
//   4. temperature == 0: greedy_token(logits), and rng is not touched;
//   5. otherwise logits / temperature, top-k, min-p (relative to the most likely token), top-p
//      (smallest top set with at least that mass), softmax, and exactly one rng draw mapped by
//      inverse CDF over the kept tokens ranked by descending probability, ties by lower id.
//      (vLLM applies min-p before top-k/top-p; min-p and top-k commute, so only the position of
//      top-p after min-p matters, and it matches vLLM.)
// NaN logits count as -inf and +inf as the largest float, so no NaN or inf reaches the result.
// When no token has a finite logit (e.g. all suppressed) the result is greedy_token(logits),
// after the one draw, so the stream position stays one draw per sampled token.
// Throws loom::RequestError if a prompt or output token id lies outside the vocabulary.
// Cost: O(vocab + (prompt + output) log(prompt + output)); no allocation in steady state.
std::int32_t sample_token(std::span<float> logits, const SamplingParams& params,
                          std::span<const std::int32_t> prompt_tokens,
                          std::span<const std::int32_t> output_tokens,
                          std::span<const std::int32_t> eos_ids, SequenceRng& rng);

// Step 5 of sample_token with the draw given: temperature, top-k, min-p, top-p, then the token
// that `uniform` (in [0, 1), e.g. rng.next_uniform()) picks by inverse CDF; greedy_token when
// temperature == 0 or no logit is finite. sample_token(..., rng) without penalties equals
// sample_with_uniform(logits, params, rng.next_uniform()). This is also the contract of sampling
// on the model's device (kernels/cuda sampling.h), which the GPU tests check against it.
std::int32_t sample_with_uniform(std::span<const float> logits, const SamplingParams& params, double uniform);

// Steps 1-3 of sample_token: penalties and min_tokens suppression, in place.
void apply_penalties(std::span<float> logits, const SamplingParams& params, std::span<const std::int32_t> prompt_tokens,
                     std::span<const std::int32_t> output_tokens, std::span<const std::int32_t> eos_ids);

// The distribution sample_with_uniform draws from (step 5 without the draw): each token it can
// pick with its probability, in the order its inverse CDF walks them (descending probability,
// ties by lower id); the probabilities sum to 1. Empty for temperature == 0 or no finite logit.
// Speculative decoding verifies drafts against it (speculative_verify.h).
struct TokenProbability {
  std::int32_t id;
  double p;
};
void sampling_distribution(std::span<const float> logits, const SamplingParams& params,
                           std::vector<TokenProbability>& out);

// The lowest id among the largest logits, skipping NaN; 0 when every logit is NaN or -inf.
// O(vocab), no allocation.
std::int32_t greedy_token(std::span<const float> logits);

}  // namespace loom
