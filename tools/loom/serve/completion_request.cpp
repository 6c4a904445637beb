#include "tools/loom/serve/completion_request.h"

#include <nlohmann/json.hpp>

#include "core/requests/jsonl_request.h"
#include "tools/loom/serve/json_body.h"

namespace loom::serve {

namespace {

using json = nlohmann::json;

bool is_token_list(const json& value) {
  if (!value.is_array() || value.empty()) return false;
  for (const json& v : value)
    if (!v.is_number_integer() && !v.is_number_unsigned()) return false;
  return true;
}

std::vector<std::int32_t> token_list(const json& value) {
  std::vector<std::int32_t> ids;
  for (const json& v : value) {
    if (v.is_number_unsigned() ? v.get<std::uint64_t>() > INT32_MAX
                               : v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > INT32_MAX)
      throw ApiError(400, "\"prompt\" has token id " + v.dump() + ", outside [0, 2^31)", "prompt");
    ids.push_back(static_cast<std::int32_t>(v.get<std::int64_t>()));
  }
  return ids;
}

// "prompt": a text, a list of texts, a list of token ids, or a list of such lists.
std::vector<Request> prompts_of(const json& prompt) {
  const char* expected = "a string, a list of strings, a list of token ids, or a list of lists of token ids";
  std::vector<Request> out;
  auto text = [&](const json& v) {
    Request r;
    r.prompt = v.get<std::string>();
    if (r.prompt->empty()) throw ApiError(400, "\"prompt\" must not be empty", "prompt");
    out.push_back(std::move(r));
  };
  auto tokens = [&](const json& v) {
    Request r;
    r.prompt_token_ids = token_list(v);
    out.push_back(std::move(r));
  };
  if (prompt.is_string()) {
    text(prompt);
  } else if (is_token_list(prompt)) {
    tokens(prompt);
  } else if (prompt.is_array() && !prompt.empty()) {
    for (const json& item : prompt) {
      if (item.is_string())
        text(item);
      else if (is_token_list(item))
        tokens(item);
      else
        throw ApiError(400, std::string("\"prompt\" must be ") + expected + "; an item is " + item.dump(), "prompt");
    }
  } else {
    throw ApiError(400, std::string("\"prompt\" must be ") + expected, "prompt");
  }
  return out;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const SamplingParams& defaults,
                                           std::string_view model_name) {
  const json object = parse_json_body(body);
  check_model_field(object, model_name);
  if (!object.contains("prompt") || object.at("prompt").is_null())
    throw ApiError(400, "missing \"prompt\": a text, a list of texts, token ids or lists of token ids", "prompt");
  if (object.contains("suffix") && !object.at("suffix").is_null())
    throw ApiError(400, "\"suffix\" (fill-in-the-middle) is not supported", "suffix");
  CompletionRequest request;
  request.options = response_options(object);
  SamplingParams params = defaults;
  if (std::string problem = apply_sampling_fields(object, params); !problem.empty()) throw ApiError(400, problem);
  check_unsupported_sampling(object, params);
  request.options.wants_logprobs = params.logprobs >= 0;
  request.options.prompt_logprobs = params.prompt_logprobs >= 0;
  // Echo with logprobs lists the prompt's tokens too (lm-evaluation-harness scores prompts so).
  if (request.options.echo && params.logprobs >= 0)
    params.prompt_logprobs = std::max(params.prompt_logprobs, params.logprobs);
  if (request.options.echo && params.logprobs >= 0 && request.options.stream)
    throw ApiError(400, "\"echo\" with \"logprobs\" is answered whole, not streamed: drop \"stream\"", "stream");
  request.prompts = prompts_of(object.at("prompt"));
  for (Request& r : request.prompts) r.params = params;
  return request;
}

}  // namespace loom::serve
