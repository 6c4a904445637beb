#include "tools/loom/serve/chat_request.h"

#include "core/requests/jsonl_request.h"
#include "core/sampling/logprobs.h"
#include "tools/loom/serve/json_body.h"

namespace loom::serve {

namespace {

using json = nlohmann::json;

// "content": a text, or a list of parts of which only {"type": "text", "text": ...} are taken.
std::string content_of(const json& message, std::size_t i) {
  const std::string where = "message " + std::to_string(i);
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) throw ApiError(400, where + ": \"content\" must be a text or a list of parts", "messages");
  std::string text;
  for (const json& part : *it) {
    const auto type = part.is_object() ? part.find("type") : part.end();
    if (type == part.end() || *type != "text" || !part.contains("text") || !part.at("text").is_string())
      throw ApiError(400, where + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported", "messages");
    text += part.at("text").get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> messages_of(const json& object) {
  auto it = object.find("messages");
  if (it == object.end() || !it->is_array() || it->empty())
    throw ApiError(400, "\"messages\" must be a non-empty list of {\"role\", \"content\"}", "messages");
  std::vector<ChatMessage> messages;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& m = it->at(i);
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string())
      throw ApiError(400, "message " + std::to_string(i) + " must be an object with a \"role\"", "messages");
    messages.push_back({m.at("role").get<std::string>(), content_of(m, i)});
  }
  return messages;
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body, const SamplingParams& defaults, std::string_view model_name) {
  json object = parse_json_body(body);
  check_model_field(object, model_name);
  ChatRequest request;
  request.messages = messages_of(object);
  request.options = response_options(object);
  if (request.options.echo) throw ApiError(400, "\"echo\" is a completions field, not a chat one", "echo");
  // Chat's logprobs fields mean something else than the completions' one apply_sampling_fields reads.
  json logprobs = object.value("logprobs", json(nullptr)), top = object.value("top_logprobs", json(nullptr));
  object.erase("logprobs");
  object.erase("top_logprobs");
  if (auto it = object.find("max_completion_tokens"); it != object.end()) {
    if (object.contains("max_tokens") && !object.at("max_tokens").is_null() && !it->is_null())
      throw ApiError(400, "give either \"max_tokens\" or \"max_completion_tokens\", not both", "max_tokens");
    if (!it->is_null()) object["max_tokens"] = *it;
    object.erase(it);
  }
  request.params = defaults;
  if (std::string problem = apply_sampling_fields(object, request.params); !problem.empty())
    throw ApiError(400, problem);
  check_unsupported_sampling(object, request.params);
  if (!logprobs.is_null() && !logprobs.is_boolean())
    throw ApiError(400, "\"logprobs\" must be true or false (chat); \"top_logprobs\" says how many", "logprobs");
  const bool wanted = logprobs.is_boolean() && logprobs.get<bool>();
  request.params.logprobs = -1;
  if (!top.is_null()) {
    if (!top.is_number_integer() || top.get<std::int64_t>() < 0 || top.get<std::int64_t>() > kMaxLogprobs)
      throw ApiError(400, "\"top_logprobs\" must be an integer 0 .. " + std::to_string(kMaxLogprobs), "top_logprobs");
    if (!wanted) throw ApiError(400, "\"top_logprobs\" needs \"logprobs\": true", "top_logprobs");
  }
  if (wanted) request.params.logprobs = top.is_null() ? 0 : static_cast<int>(top.get<std::int64_t>());
  request.options.wants_logprobs = wanted;
  return request;
}

}  // namespace loom::serve
