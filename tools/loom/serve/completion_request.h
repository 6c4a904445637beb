// The body of POST /v1/completions (OpenAI's fields and vLLM's extensions) turned into engine
// requests. Pure: no engine, no tokenizer. Field checks of the sampling parameters are the
// JSONL reader's (apply_sampling_fields), so a bad value reads the same in both.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/requests/request.h"

namespace loom::serve {

// What a completion or chat request asks besides its prompts' sampling.
struct ResponseOptions {
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage: a last chunk with the usage
  bool echo = false;              // the prompt's text before each choice's text
  bool return_token_ids = false;  // each choice carries prompt_token_ids and token_ids (vLLM)
  bool wants_logprobs = false;    // completions: "logprobs" set; chat: "logprobs": true
  bool prompt_logprobs = false;   // vLLM's "prompt_logprobs": each choice carries the prompt's
};

struct CompletionRequest {
  // One per prompt, each with `params.n` samples; ids are left for the caller to give. A prompt
  // is text (Request::prompt) or token ids.
  std::vector<Request> prompts;
  ResponseOptions options;
};

// Parses a /v1/completions body. `model_name` is the served model: a "model" field naming another
// is a 404. Unknown fields are ignored, as vLLM does; fields Loom cannot honour (suffix,
// logit_bias, best_of > n, echo with logprobs) are a 400 naming them. Throws ApiError.
CompletionRequest parse_completion_request(std::string_view body, const SamplingParams& defaults,
                                           std::string_view model_name);

}  // namespace loom::serve
