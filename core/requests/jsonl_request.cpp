#include "core/requests/jsonl_request.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/common/json_depth.h"
#include "core/common/suggest.h"

namespace loom {

namespace {

using json = nlohmann::json;

// Thrown and caught inside this file only: the first problem found ends the line.
struct LineProblem {
  std::string message;
};

std::string in_quotes(std::string_view field) {
  std::string text(1, '"');
  text.append(field);
  text.push_back('"');
  return text;
}

std::string kind_of(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "a value";
  }
}

// `a string ("hot")`: the kind and a short excerpt, enough to find the value on a long line.
std::string describe(const json& value) {
  if (value.is_null()) return "null";
  constexpr std::size_t kMaxExcerpt = 40;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxExcerpt) {
    text.resize(kMaxExcerpt - 3);
    text.append("...");
  }
  return kind_of(value) + " (" + text + ")";
}

[[noreturn]] void fail(std::string message) { throw LineProblem{std::move(message)}; }

[[noreturn]] void wrong(std::string_view field, std::string_view expected, const json& value) {
  fail(in_quotes(field) + " must be " + std::string(expected) + ", got " + describe(value));
}

// JSON integers, and floats with an integral value (100.0), as int64; nullopt otherwise.
std::optional<std::int64_t> integral(const json& value) {
  if (value.is_number_unsigned()) {
    auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::int32_t int32_in(std::string_view field, const json& value, std::int64_t min, std::string_view expected) {
  auto i = integral(value);
  if (!i || *i < min || *i > std::numeric_limits<std::int32_t>::max()) wrong(field, expected, value);
  return static_cast<std::int32_t>(*i);
}

double number(std::string_view field, const json& value) {
  if (!value.is_number()) wrong(field, "a number", value);
  return value.get<double>();
}

std::vector<std::int32_t> token_ids(std::string_view field, const json& value) {
  if (!value.is_array()) wrong(field, "a list of token ids (non-negative integers)", value);
  std::vector<std::int32_t> ids;
  ids.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    std::string element = std::string(field) + "[" + std::to_string(i) + "]";
    ids.push_back(int32_in(element, value[i], 0, "a token id (a non-negative integer)"));
  }
  return ids;
}

std::vector<std::string> stop_strings(const json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  if (!value.is_array()) wrong("stop", "a string or a list of strings", value);
  std::vector<std::string> stops;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) wrong("stop[" + std::to_string(i) + "]", "a string", value[i]);
    stops.push_back(value[i].get<std::string>());
  }
  return stops;
}

std::string request_id(const json& value) {
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().empty()) fail("\"id\" must not be empty");
    return value.get<std::string>();
  }
  if (value.is_number_unsigned()) return std::to_string(value.get<std::uint64_t>());
  if (value.is_number_integer()) return std::to_string(value.get<std::int64_t>());
  wrong("id", "a string or an integer", value);
}

std::uint64_t seed(const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  auto i = integral(value);
  if (!i || *i < 0) wrong("seed", "a non-negative integer", value);
  return static_cast<std::uint64_t>(*i);
}

using Setter = std::function<void(const json&, Request&)>;

// One entry per accepted field, in documentation order.
const std::vector<std::pair<std::string, Setter>>& field_setters() {
  static const std::vector<std::pair<std::string, Setter>> setters = {
      {"id", [](const json& v, Request& r) { r.id = request_id(v); }},
      {"prompt",
       [](const json& v, Request& r) {
         if (!v.is_string()) wrong("prompt", "a string", v);
         if (v.get_ref<const std::string&>().empty()) fail("\"prompt\" must not be empty");
         r.prompt = v.get<std::string>();
       }},
      {"prompt_token_ids",
       [](const json& v, Request& r) {
         r.prompt_token_ids = token_ids("prompt_token_ids", v);
         if (r.prompt_token_ids.empty()) fail("\"prompt_token_ids\" must not be empty");
       }},
      {"max_tokens",
       [](const json& v, Request& r) { r.params.max_tokens = int32_in("max_tokens", v, 0, "a non-negative integer"); }},
      {"max_new_tokens",
       [](const json& v, Request& r) {
         r.params.max_tokens = int32_in("max_new_tokens", v, 0, "a non-negative integer");
       }},
      {"min_tokens",
       [](const json& v, Request& r) { r.params.min_tokens = int32_in("min_tokens", v, 0, "a non-negative integer"); }},
      {"temperature", [](const json& v, Request& r) { r.params.temperature = number("temperature", v); }},
      {"top_p", [](const json& v, Request& r) { r.params.top_p = number("top_p", v); }},
      {"top_k",
       [](const json& v, Request& r) {
         // vLLM spells "all tokens" as -1; Loom as 0.
         r.params.top_k = std::max(0, int32_in("top_k", v, -1, "an integer >= -1 (0 or -1 = all)"));
       }},
      {"min_p", [](const json& v, Request& r) { r.params.min_p = number("min_p", v); }},
      {"repetition_penalty",
       [](const json& v, Request& r) { r.params.repetition_penalty = number("repetition_penalty", v); }},
      {"presence_penalty",
       [](const json& v, Request& r) { r.params.presence_penalty = number("presence_penalty", v); }},
      {"frequency_penalty",
       [](const json& v, Request& r) { r.params.frequency_penalty = number("frequency_penalty", v); }},
      {"seed", [](const json& v, Request& r) { r.params.seed = seed(v); }},
      {"stop", [](const json& v, Request& r) { r.params.stop = stop_strings(v); }},
      {"stop_token_ids",
       [](const json& v, Request& r) { r.params.stop_token_ids = token_ids("stop_token_ids", v); }},
      {"ignore_eos",
       [](const json& v, Request& r) {
         if (!v.is_boolean()) wrong("ignore_eos", "true or false", v);
         r.params.ignore_eos = v.get<bool>();
       }},
      {"n", [](const json& v, Request& r) { r.params.n = int32_in("n", v, 1, "an integer >= 1"); }},
      {"logprobs",
       [](const json& v, Request& r) {
         // OpenAI's completions: the number of top log-probabilities per token; null = none.
         r.params.logprobs = v.is_null() ? -1 : int32_in("logprobs", v, 0, "an integer 0 .. 20, or null");
       }},
      {"prompt_logprobs",
       [](const json& v, Request& r) {
         // vLLM's: the same for each prompt token after the first.
         r.params.prompt_logprobs = int32_in("prompt_logprobs", v, 0, "an integer 0 .. 20, or null");
       }},
      {"arrival_time",
       [](const json& v, Request& r) {
         if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
           wrong("arrival_time", "a number >= 0 (seconds)", v);
         r.arrival_time = v.get<double>();
       }},
  };
  return setters;
}

json parse_object(std::string_view line) {
  json object;
  try {
    object = json::parse(line, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth)
        fail("not valid JSON: lists and objects nest deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return true;
    });
  } catch (const json::exception& e) {
    // A syntax error (parse_error) or a number too large for a double (out_of_range.406).
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; the rest says where and what.
    std::string what = e.what();
    if (auto end = what.find("] "); !what.empty() && what.front() == '[' && end != std::string::npos)
      what = what.substr(end + 2);
    fail("not valid JSON: " + what);
  }
  if (!object.is_object()) fail("expected a JSON object ({...}), got " + describe(object));
  return object;
}

void check_prompt_given(const json& object) {
  auto given = [&](const char* key) { return object.contains(key) && !object.at(key).is_null(); };
  bool text = given("prompt");
  bool tokens = given("prompt_token_ids");
  if (text && tokens) fail("give either \"prompt\" or \"prompt_token_ids\", not both");
  if (!text && !tokens) fail("missing the prompt: give \"prompt\" (text) or \"prompt_token_ids\" (a list of token ids)");
  if (given("max_tokens") && given("max_new_tokens"))
    fail("give either \"max_tokens\" or its alias \"max_new_tokens\", not both");
}

}  // namespace

std::span<const std::string> accepted_request_fields() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const auto& [name, setter] : field_setters()) all.push_back(name);
    return all;
  }();
  return names;
}

std::string apply_sampling_fields(const json& object, SamplingParams& params) {
  static const std::vector<std::string> not_sampling = {"id", "prompt", "prompt_token_ids", "arrival_time"};
  try {
    if (object.contains("max_tokens") && object.contains("max_new_tokens") && !object.at("max_tokens").is_null() &&
        !object.at("max_new_tokens").is_null())
      fail("give either \"max_tokens\" or its alias \"max_new_tokens\", not both");
    Request request;
    request.params = params;
    for (const auto& [name, setter] : field_setters()) {
      if (std::find(not_sampling.begin(), not_sampling.end(), name) != not_sampling.end()) continue;
      auto it = object.find(name);
      if (it != object.end() && !it->is_null()) setter(*it, request);
    }
    params = request.params;
    return "";
  } catch (const LineProblem& problem) {
    return problem.message;
  }
}

std::variant<Request, std::string> parse_jsonl_request(std::string_view line, const SamplingParams& defaults) {
  try {
    json object = parse_object(line);
    const auto& setters = field_setters();
    for (const auto& [key, value] : object.items()) {
      bool known = false;
      for (const auto& [name, setter] : setters) known = known || name == key;
      if (!known) {
        fail("unknown field " + in_quotes(key) + "." + did_you_mean(key, accepted_request_fields()) +
             " Accepted fields: " + join_names(accepted_request_fields()) + ".");
      }
    }
    check_prompt_given(object);
    Request request;
    request.params = defaults;
    for (const auto& [name, setter] : setters) {
      auto it = object.find(name);
      if (it != object.end() && !it->is_null()) setter(*it, request);
    }
    return request;
  } catch (const LineProblem& problem) {
    return problem.message;
  }
}

}  // namespace loom
