// The JSON that `loom serve` answers with: whole completion and chat responses, the chunks of a
// stream (each written as one server-sent event), usage, and the model list. Field names are
// OpenAI's; token_ids and prompt_token_ids are vLLM's (return_token_ids).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/sampling/logprobs.h"
#include "tools/loom/serve/completion_request.h"

namespace loom::serve {

// The text a token stands for in logprobs ("▁Paris" -> " Paris"; "token_id:N" without a tokenizer).
using TokenText = std::function<std::string(std::int32_t)>;

struct ResponseHead {
  std::string id;        // "cmpl-..." or "chatcmpl-..."
  std::int64_t created;  // Unix seconds
  std::string model;
  bool chat = false;
};

// One choice, whole (a response) or what it added since the last chunk (a stream).
struct ChoiceOutput {
  std::size_t index = 0;
  std::string text;
  std::vector<std::int32_t> token_ids;
  std::vector<TokenLogprobs> logprobs;         // per token when the request asked
  std::string finish_reason;                   // "" while it goes on
  std::vector<std::int32_t> prompt_token_ids;  // with return_token_ids: the first chunk, or the response
  std::size_t text_offset = 0;                 // where `text` starts in the choice's whole text (logprobs' text_offset)
  // The prompt's log-probabilities, with the choice's end: the prompt's first token (which has
  // none) and one entry per later prompt token. Echo lists them before the output's.
  std::int32_t prompt_first_token = -1;
  std::vector<TokenLogprobs> prompt_logprobs;
};

struct Usage {
  std::size_t prompt_tokens = 0;
  std::size_t completion_tokens = 0;
};

std::string response_body(const ResponseHead& head, const std::vector<ChoiceOutput>& choices,
                          const ResponseOptions& options, const Usage& usage, const TokenText& token_text);

// One event's JSON (without "data: "); `first` marks a chat choice's first chunk (its role).
std::string chunk_body(const ResponseHead& head, const ChoiceOutput& delta, const ResponseOptions& options,
                       const TokenText& token_text, bool first);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
std::string usage_chunk_body(const ResponseHead& head, const Usage& usage);

// GET /v1/models; vocab_size is Loom's own field (loom bench --server draws prompts from it).
std::string models_body(const std::string& model, std::int64_t created, std::size_t max_model_len,
                        std::size_t vocab_size);

}  // namespace loom::serve
