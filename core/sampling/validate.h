// Checks a request's SamplingParams before it is admitted, so the sampler can trust them.
#pragma once

#include "core/sampling/sampling_params.h"

namespace loom {

// Throws loom::RequestError naming the first offending field, its value and the accepted range:
//   temperature   finite, >= 0            top_p               0 < top_p <= 1
//   top_k         >= 0 (0 = all)          min_p               0 <= min_p <= 1
//   repetition_penalty  finite, > 0       presence/frequency_penalty  finite
//   max_tokens    >= 0                    min_tokens          0 <= min_tokens <= max_tokens
//   n             1 .. kMaxSamples        stop_token_ids      each >= 0
//   logprobs      -1 (none) .. kMaxLogprobs
// Returns normally when every field is acceptable.
void validate(const SamplingParams& params);

// The most samples one request may ask for (n): each is a sequence of its own, so a huge n is a
// huge batch hiding in one line; more samples are more requests.
constexpr int kMaxSamples = 256;

// How many results a request gets: one per sample, or a single error result when n is out of
// range (1 .. kMaxSamples).
inline std::int32_t num_results(const SamplingParams& params) {
  return params.n >= 1 && params.n <= kMaxSamples ? params.n : 1;
}

}  // namespace loom
