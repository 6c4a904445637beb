// What the completion and chat request parsers share: the body as a JSON object, the "model"
// check, the response options and the fields Loom refuses.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "core/sampling/sampling_params.h"
#include "tools/loom/serve/api_error.h"
#include "tools/loom/serve/completion_request.h"

namespace loom::serve {

// The body as a JSON object, or ApiError 400 ("not valid JSON: ...", nesting deeper than
// kMaxJsonDepth, not an object).
nlohmann::json parse_json_body(std::string_view body);

// A "model" naming another model than `model_name` is a 404, as OpenAI answers.
void check_model_field(const nlohmann::json& object, std::string_view model_name);

// stream, stream_options.include_usage, echo, return_token_ids.
ResponseOptions response_options(const nlohmann::json& object);

// best_of other than n, a non-empty logit_bias: a 400 naming the field.
void check_unsupported_sampling(const nlohmann::json& object, const SamplingParams& params);

}  // namespace loom::serve
