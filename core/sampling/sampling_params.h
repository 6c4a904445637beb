// How one request wants its tokens chosen and when it stops; vLLM's field names and meanings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace loom {

struct SamplingParams {
  double temperature = 0.0;          // 0 = greedy (argmax, lowest id on ties)
  double top_p = 1.0;                // keep the smallest set of most likely tokens with this mass
  std::int32_t top_k = 0;            // keep the k most likely tokens; 0 = all
  double min_p = 0.0;                // drop tokens with p < min_p * p_max
  double repetition_penalty = 1.0;   // > 1: logits of tokens in prompt or output are divided (if > 0) or multiplied
  double presence_penalty = 0.0;     // subtracted once from logits of tokens already generated
  double frequency_penalty = 0.0;    // subtracted per occurrence in the generated tokens
  std::optional<std::uint64_t> seed; // per-request seed; absent = derived from the run's seed and the request's index
  std::int32_t max_tokens = 128;     // tokens to generate, at most
  std::int32_t min_tokens = 0;       // EOS and stop tokens are ignored before this many
  std::vector<std::int32_t> stop_token_ids;  // generation ends after one of these (it is kept in token_ids)
  std::vector<std::string> stop;     // generation ends before one of these strings (not included in text)
  bool ignore_eos = false;           // keep going past the model's end-of-sequence token
  std::int32_t n = 1;                // independent samples of the same prompt
  std::int32_t logprobs = -1;        // per generated token its log-probability and the top `logprobs`; -1 = none
  std::int32_t prompt_logprobs = -1; // the same for each prompt token after the first (vLLM's); -1 = none
};

}  // namespace loom
