// One line of JSONL input -> one Request. The field names are vLLM's / OpenAI's, so a file
// written for those tools reads here unchanged (docs/requests.md lists them).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "core/requests/request.h"

namespace loom {

// Parses `line` (one JSON object) into a Request whose params start as `defaults` and take every
// field present; a field set to null counts as absent. Request::id is left empty when the line
// has no "id" (the reader generates one), and Request::line is left 0.
// Returns the reason the line is bad instead, without the "source:line: " prefix, e.g.
// `"temperature" must be a number, got a string ("hot")`.
std::variant<Request, std::string> parse_jsonl_request(std::string_view line, const SamplingParams& defaults);

// Sets `params` from the fields of `object` that are sampling parameters (max_tokens ... logprobs,
// as a request line spells them; null counts as absent) and leaves every other field alone. For
// `loom serve`, whose requests carry them beside fields of their own. Returns the first problem
// ("" when none), worded as for a request line.
std::string apply_sampling_fields(const nlohmann::json& object, SamplingParams& params);

// The field names a request line may use, in the order docs/requests.md lists them.
std::span<const std::string> accepted_request_fields();

}  // namespace loom
