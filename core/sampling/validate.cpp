#include "core/sampling/validate.h"

#include <cmath>
#include <sstream>
#include <string>

#include "core/sampling/logprobs.h"
#include "loom/error.h"

namespace loom {
namespace {

template <typename T>
[[noreturn]] void reject(const char* field, T value, const char* accepted) {
  std::ostringstream message;
  message << "sampling parameter '" << field << "' = " << value << " is out of range; accepted: "
          << accepted;
  throw RequestError(message.str());
}

}  // namespace

void validate(const SamplingParams& p) {
  // Comparisons are written so that NaN fails them: !(x >= 0) is true for NaN, x < 0 is not.
  if (!(p.temperature >= 0.0) || !std::isfinite(p.temperature)) {
    reject("temperature", p.temperature, "a finite number >= 0 (0 = greedy)");
  }
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) reject("top_p", p.top_p, "0 < top_p <= 1");
  if (p.top_k < 0) reject("top_k", p.top_k, "top_k >= 0 (0 = all tokens)");
  if (p.logprobs < -1 || p.logprobs > kMaxLogprobs)
    reject("logprobs", p.logprobs, "0 <= logprobs <= 20 (or absent)");
  if (p.prompt_logprobs < -1 || p.prompt_logprobs > kMaxLogprobs)
    reject("prompt_logprobs", p.prompt_logprobs, "0 <= prompt_logprobs <= 20 (or absent)");
  if (!(p.min_p >= 0.0 && p.min_p <= 1.0)) reject("min_p", p.min_p, "0 <= min_p <= 1");
  if (!(p.repetition_penalty > 0.0) || !std::isfinite(p.repetition_penalty)) {
    reject("repetition_penalty", p.repetition_penalty, "a finite number > 0 (1 = off)");
  }
  if (!std::isfinite(p.presence_penalty)) {
    reject("presence_penalty", p.presence_penalty, "a finite number (0 = off)");
  }
  if (!std::isfinite(p.frequency_penalty)) {
    reject("frequency_penalty", p.frequency_penalty, "a finite number (0 = off)");
  }
  if (p.max_tokens < 0) reject("max_tokens", p.max_tokens, "max_tokens >= 0");
  if (p.min_tokens < 0) reject("min_tokens", p.min_tokens, "min_tokens >= 0");
  if (p.min_tokens > p.max_tokens) {
    reject("min_tokens", p.min_tokens, "min_tokens <= max_tokens");
  }
  if (p.n < 1 || p.n > kMaxSamples) reject("n", p.n, "1 <= n <= 256 (for more samples, send more requests)");
  for (std::int32_t id : p.stop_token_ids) {
    if (id < 0) reject("stop_token_ids", id, "token ids >= 0");
  }
}

}  // namespace loom
