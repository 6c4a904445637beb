// Fuzz target `jsonl_request`: the input of `loom generate --input FILE` in JSONL.
//
// Path: the whole input as one line through parse_jsonl_request (JSON, field names and types,
// prompt rules); then the input as a file through read_requests (lines, BOM and '\r', text or
// JSONL detection, generated and duplicate ids) under both bad-line policies; then the sampling
// check the engine applies to each request it admits (validate).
// The documented promises are checked too: a request has exactly one kind of prompt, token ids
// are not negative, ids are unique within one input. A broken promise aborts.
// Expected: a message for a bad line, loom::Error (UsageError, RequestError). Anything else
// escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include "core/requests/jsonl_request.h"
#include "core/requests/request_reader.h"
#include "core/sampling/validate.h"
#include "loom/error.h"

namespace {

void check(const loom::Request& request) {
  const bool text = request.prompt.has_value();
  const bool tokens = !request.prompt_token_ids.empty();
  if (text == tokens || (text && request.prompt->empty())) std::abort();
  for (std::int32_t id : request.prompt_token_ids)
    if (id < 0) std::abort();
  try {
    loom::validate(request.params);
  } catch (const loom::Error&) {
    // Out-of-range sampling values fail that request alone: expected.
  }
}

void read_all(const std::string& text, loom::BadLinePolicy policy) {
  std::istringstream in(text);
  const loom::ReadResult result =
      loom::read_requests(in, "fuzz.jsonl", loom::SamplingParams{}, loom::InputFormat::kAuto, policy);
  std::set<std::string> ids;
  for (const loom::Request& request : result.requests) {
    if (request.id.empty() || !ids.insert(request.id).second) std::abort();
    if (result.format == loom::InputFormat::kJsonl) check(request);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = loom::parse_jsonl_request(text, loom::SamplingParams{});
  if (auto* request = std::get_if<loom::Request>(&parsed))
    check(*request);
  else if (std::get<std::string>(parsed).empty())
    std::abort();  // a refusal always says why
  for (auto policy : {loom::BadLinePolicy::kSkip, loom::BadLinePolicy::kFail}) {
    try {
      read_all(text, policy);
    } catch (const loom::Error&) {
    }
  }
  return 0;
}
