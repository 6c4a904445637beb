// Log-probabilities of generated tokens, as a request's `logprobs` asks: the chosen token's and
// the top n of the model's distribution at its position (the raw logits' softmax: before
// temperature, top-k/top-p and penalties, as vLLM reports by default).
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace loom {

// The most top log-probabilities a request may ask for per token.
constexpr int kMaxLogprobs = 20;

struct TokenLogprobs {
  std::int32_t token = 0;
  double logprob = 0.0;
  std::vector<std::pair<std::int32_t, double>> top;  // the top_n most likely, best first (ties: lower id)
};

// log softmax(logits)[token], in double (the maximum subtracted, the sum of exps in double),
// and the top_n (0 .. kMaxLogprobs) most likely tokens. NaN logits count as -inf and +inf as the
// largest float (as the sampler sees them); a row with nothing else gives -inf everywhere.
TokenLogprobs token_logprobs(std::span<const float> logits, std::int32_t token, int top_n);

}  // namespace loom
