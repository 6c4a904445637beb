// Fuzz target `serve_request`: the bodies `loom serve` reads, POST /v1/completions and POST
// /v1/chat/completions, through their parsers (JSON, prompt forms, sampling fields, chat message
// parts, the fields refused). The first byte picks the endpoint (even: completions); the rest is
// the body.
// Promises checked: a completion has at least one prompt, each either non-empty text or token
// ids in [0, 2^31); a refusal is an ApiError with a 4xx status and a message. A broken promise
// aborts; any other exception escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tools/loom/serve/api_error.h"
#include "tools/loom/serve/chat_request.h"
#include "tools/loom/serve/completion_request.h"

namespace {

void check(const loom::serve::ApiError& e) {
  if (e.status < 400 || e.status >= 500 || std::string_view(e.what()).empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const loom::SamplingParams defaults;
  try {
    if (data[0] % 2 == 0) {
      const loom::serve::CompletionRequest r = loom::serve::parse_completion_request(body, defaults, "m");
      if (r.prompts.empty()) std::abort();
      for (const loom::Request& p : r.prompts) {
        if (p.prompt.has_value() == !p.prompt_token_ids.empty()) std::abort();
        if (p.prompt && p.prompt->empty()) std::abort();
        for (std::int32_t id : p.prompt_token_ids)
          if (id < 0) std::abort();
      }
    } else {
      const loom::serve::ChatRequest r = loom::serve::parse_chat_request(body, defaults, "m");
      if (r.messages.empty()) std::abort();
    }
  } catch (const loom::serve::ApiError& e) {
    check(e);
  }
  return 0;
}
