// The body of POST /v1/chat/completions: the messages, their sampling, and the response options.
// Chat spells log-probabilities as "logprobs": true with "top_logprobs": N, and accepts
// "max_completion_tokens" for max_tokens; the other sampling fields read as for completions.
#pragma once

#include <string_view>
#include <vector>

#include "tools/loom/serve/chat_template.h"
#include "tools/loom/serve/completion_request.h"

namespace loom::serve {

struct ChatRequest {
  std::vector<ChatMessage> messages;
  SamplingParams params;
  ResponseOptions options;
};

// Throws ApiError (400; 404 for another model).
ChatRequest parse_chat_request(std::string_view body, const SamplingParams& defaults, std::string_view model_name);

}  // namespace loom::serve
