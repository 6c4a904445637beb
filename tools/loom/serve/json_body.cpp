#include "tools/loom/serve/json_body.h"

#include <string>

#include "core/common/json_depth.h"

namespace loom::serve {

using json = nlohmann::json;

json parse_json_body(std::string_view body) {
  json object;
  try {
    object = json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxJsonDepth)
        throw ApiError(400,
                       "the body nests lists and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return true;
    });
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (auto end = what.find("] "); !what.empty() && what.front() == '[' && end != std::string::npos)
      what = what.substr(end + 2);
    throw ApiError(400, "the body is not valid JSON: " + what);
  }
  if (!object.is_object()) throw ApiError(400, "the body must be a JSON object ({...})");
  return object;
}

void check_model_field(const json& object, std::string_view model_name) {
  auto it = object.find("model");
  if (it == object.end() || it->is_null()) return;
  if (!it->is_string()) throw ApiError(400, "\"model\" must be a string", "model");
  if (it->get_ref<const std::string&>() != model_name)
    throw ApiError(404,
                   "The model `" + it->get<std::string>() + "` does not exist; this server serves `" +
                       std::string(model_name) + "` (GET /v1/models)",
                   "model");
}

namespace {

bool boolean(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw ApiError(400, std::string("\"") + field + "\" must be true or false", field);
  return it->get<bool>();
}

}  // namespace

ResponseOptions response_options(const json& object) {
  ResponseOptions options;
  options.stream = boolean(object, "stream");
  options.echo = boolean(object, "echo");
  options.return_token_ids = boolean(object, "return_token_ids");
  if (auto it = object.find("stream_options"); it != object.end() && !it->is_null()) {
    if (!it->is_object()) throw ApiError(400, "\"stream_options\" must be an object", "stream_options");
    if (!options.stream)
      throw ApiError(400, "\"stream_options\" is only allowed with \"stream\": true", "stream_options");
    options.include_usage = boolean(*it, "include_usage");
  }
  return options;
}

void check_unsupported_sampling(const json& object, const SamplingParams& params) {
  if (auto it = object.find("best_of");
      it != object.end() && !it->is_null() && !(it->is_number_integer() && it->get<std::int64_t>() == params.n))
    throw ApiError(400, "\"best_of\" other than \"n\" is not supported: Loom returns every sample it draws", "best_of");
  if (auto it = object.find("logit_bias"); it != object.end() && !it->is_null() && !(it->is_object() && it->empty()))
    throw ApiError(400, "\"logit_bias\" is not supported", "logit_bias");
}

}  // namespace loom::serve
